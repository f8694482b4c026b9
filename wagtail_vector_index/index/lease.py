"""One update of an index at a time, across processes, on any database.

An update holds the index's lease: a row of ``IndexUpdateLease`` (one per
index, unique name) whose ``owner`` is the holder's random token. It is taken
by inserting the row, or by a conditional ``UPDATE`` of a row that is free,
expired, or held by a process of this host that no longer exists; only one
process's statement can match. The holder refreshes ``expires_at`` as it
goes (and, on PostgreSQL outside a transaction, from a thread every fifth of
the lease's length, since one step such as an HNSW build can take minutes),
checks the lease inside the very transaction that activates a build, and
frees it when done. A process killed while holding it (SIGKILL) blocks the
index until the lease expires, or less on the same host.

Build numbers are reserved on the lease's row (``last_build``), so no two
updates ever write the same build, even one whose lease ran out while it was
still writing: its build is never activated (its check fails) and its rows
are cleared by the next update.

Clocks: expiry times are written by each process's clock; hosts sharing a
database need roughly synchronised clocks (NTP), as the lease lasts minutes.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, OperationalError, connections, router, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from wagtail_vector_index.exceptions import WagtailVectorIndexError
from wagtail_vector_index.models import IndexUpdateLease
from wagtail_vector_index.redaction import get_logger

logger = get_logger(__name__)

#: How long a lease lasts without being refreshed, by default (seconds).
DEFAULT_LEASE_SECONDS = 300


def _time(moment: datetime | None) -> str:
    if moment is None:
        return "an unknown time"
    if timezone.is_aware(moment):
        moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class IndexUpdateInProgressError(WagtailVectorIndexError):
    """Another process is updating the index (it holds the index's lease)."""

    def __init__(
        self,
        index_name: str,
        *,
        holder: dict[str, Any] | None = None,
        waited: float | None = None,
        message: str | None = None,
    ) -> None:
        self.index_name = index_name
        self.holder = holder or {}
        self.waited = waited
        if message is None:
            values = {
                "index": index_name,
                "holder": self.holder.get("holder") or _("another process"),
                "since": _time(self.holder.get("acquired_at")),
                "waited": f"{waited:g}" if waited else "",
                "free_at": _time(self.holder.get("expires_at")),
            }
            if waited:
                message = _(
                    'The vector index "%(index)s" is being updated by another '
                    "process (%(holder)s, since %(since)s); waited %(waited)s "
                    "seconds for it. If that process was killed, the index is "
                    "free again at %(free_at)s at the latest."
                )
            else:
                message = _(
                    'The vector index "%(index)s" is being updated by another '
                    "process (%(holder)s, since %(since)s). If that process was "
                    "killed, the index is free again at %(free_at)s at the latest."
                )
            message = message % values
        super().__init__(message)


class IndexLeaseLostError(IndexUpdateInProgressError):
    """The update's lease ran out and another process took it: this update
    stopped without activating anything."""

    def __init__(self, index_name: str, *, holder: dict[str, Any] | None = None):
        super().__init__(
            index_name,
            holder=holder,
            message=_(
                'The update of the vector index "%(index)s" stopped: its '
                "lease expired and another process took over the index. "
                "Nothing more of this update was written; the index answers as "
                "the other update leaves it."
            )
            % {"index": index_name},
        )


def holder_name() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(holder: str) -> bool:
    """Whether ``holder`` names a process of this host that no longer exists."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # Someone else's process: it exists.
        return False
    return False


def _locked(error: OperationalError) -> bool:
    """SQLite's "database is locked": another connection is writing."""
    return "locked" in str(error)


class IndexLease:
    """The right to update one index, held by at most one process at a time.

    ``acquire(wait=...)`` or ``try_acquire()``, then ``refresh()`` now and
    then, ``confirm()`` in the transaction that makes changes visible, and
    ``release()`` in a ``finally``.
    """

    #: Seconds between attempts while waiting for the lease (with jitter).
    poll_interval = 0.5

    def __init__(self, index_name: str, *, seconds: float = DEFAULT_LEASE_SECONDS):
        self.index_name = index_name
        self.seconds = seconds
        self.token: str | None = None
        self.using = router.db_for_write(IndexUpdateLease)
        self._refreshed = 0.0
        self._busy: dict[str, Any] | None = None

    def __repr__(self) -> str:
        state = "held" if self.held else "not held"
        return f"<IndexLease {self.index_name!r} {state}>"

    @property
    def held(self) -> bool:
        return self.token is not None

    def _rows(self) -> Any:
        return IndexUpdateLease.objects.using(self.using).filter(
            index_name=self.index_name
        )

    def _current(self) -> dict[str, Any] | None:
        return (
            self._rows().values("owner", "holder", "acquired_at", "expires_at").first()
        )

    # -- taking and giving back ---------------------------------------------

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; ``False`` at once otherwise."""
        if self.token is not None:
            raise RuntimeError(f"{self!r} is already held.")
        token = uuid.uuid4().hex
        now = timezone.now()
        values = {
            "owner": token,
            "holder": holder_name(),
            "acquired_at": now,
            "expires_at": now + timedelta(seconds=self.seconds),
        }
        try:
            # Read first, write only when the lease looks free: a process
            # waiting for the lease never writes while the holder works (on
            # SQLite, a write would contend with the holder's transactions).
            current = self._current()
            if current is None:
                try:
                    with transaction.atomic(using=self.using):
                        IndexUpdateLease.objects.using(self.using).create(
                            index_name=self.index_name, **values
                        )
                except IntegrityError:  # Another process inserted it first.
                    self._busy = self._current()
                    return False
            else:
                # Compare and swap: the row must still be as it was read.
                rows = self._rows().filter(owner=current["owner"])
                expires = current["expires_at"]
                if current["owner"] and expires is not None and expires > now:
                    if not _gone(current["holder"]):
                        self._busy = current
                        return False
                    rows = rows.filter(holder=current["holder"])
                elif current["owner"]:
                    rows = rows.filter(Q(expires_at__lte=now) | Q(expires_at=None))
                if not rows.update(**values):
                    self._busy = self._current() or current
                    return False
                if current["owner"]:
                    logger.warning(
                        'Vector index "%s": took over the update lease of %s (%s).',
                        self.index_name,
                        current["holder"] or "a process",
                        "expired" if expires is None or expires <= now else "gone",
                    )
        except OperationalError as error:
            if not _locked(error):
                raise
            return False
        self.token = token
        self._refreshed = time.monotonic()
        self._busy = None
        return True

    def acquire(self, wait: float | None = 0.0) -> None:
        """Take the lease, waiting up to ``wait`` seconds (``None``: as long
        as it takes) for another process to finish.

        Raises :class:`IndexUpdateInProgressError` when the time is up.
        """
        deadline = None if wait is None else time.monotonic() + max(wait, 0.0)
        while not self.try_acquire():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise IndexUpdateInProgressError(
                    self.index_name, holder=self._busy, waited=wait
                )
            pause = self.poll_interval * random.uniform(0.5, 1.5)  # noqa: S311
            time.sleep(pause if left is None else min(pause, left))

    def refresh(self, *, force: bool = False) -> None:
        """Push the expiry back (at most every tenth of the lease's length
        unless ``force``); :class:`IndexLeaseLostError` if another process
        has taken the lease."""
        if self.token is None:
            raise IndexLeaseLostError(self.index_name, holder=self._current())
        if not force and time.monotonic() - self._refreshed < self.seconds / 10:
            return
        expires = timezone.now() + timedelta(seconds=self.seconds)
        try:
            updated = self._rows().filter(owner=self.token).update(expires_at=expires)
        except OperationalError as error:
            if force or not _locked(error):
                raise
            return  # SQLite is busy: next time.
        if not updated:
            self.token = None
            raise IndexLeaseLostError(self.index_name, holder=self._current())
        self._refreshed = time.monotonic()

    def confirm(self) -> None:
        """Check, by writing, that the lease is still held: call it first in
        the transaction that activates changes, so that nobody can take the
        lease before that transaction ends."""
        self.refresh(force=True)

    def release(self) -> None:
        """Free the lease (if still held)."""
        if self.token is None:
            return
        token, self.token = self.token, None
        self._rows().filter(owner=token).update(
            owner="", holder="", acquired_at=None, expires_at=None
        )

    def reserve_build(self, lowest: int) -> int:
        """A build number above ``lowest`` and above every number reserved
        before for this index."""
        rows = self._rows().filter(owner=self.token or "-")
        if not rows.update(last_build=Greatest(F("last_build"), Value(lowest)) + 1):
            self.token = None
            raise IndexLeaseLostError(self.index_name, holder=self._current())
        return rows.values_list("last_build", flat=True).get()

    @contextmanager
    def kept_alive(self) -> Iterator[None]:
        """Refresh the lease from a thread while the block runs (on PostgreSQL
        outside a transaction only: a thread's connection could not see a
        lease taken in an open transaction, and SQLite allows one writer)."""
        connection = connections[self.using]
        if (
            self.token is None
            or connection.vendor == "sqlite"
            or connection.in_atomic_block
        ):
            yield
            return
        stop = threading.Event()
        token = self.token

        def beat() -> None:
            try:
                while not stop.wait(self.seconds / 5):
                    try:
                        expires = timezone.now() + timedelta(seconds=self.seconds)
                        self._rows().filter(owner=token).update(expires_at=expires)
                    except Exception:  # The main thread's refreshes decide.
                        logger.debug("Lease refresh failed", exc_info=True)
            finally:
                connections.close_all()  # This thread's connections.

        thread = threading.Thread(
            target=beat, name=f"wvi-lease-{self.index_name}", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

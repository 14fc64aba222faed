"""The server's home on disk: private to the server's OS user, with a way in for its job user.

At start the server sets the modes of its own files itself, whatever the umask it was started
with: the home and every folder in it ``0700``, every file ``0600`` -- the SQLite database (and
its ``-wal`` / ``-shm``, which SQLite creates with the database's mode; a new database is
created empty as ``0600`` before SQLite opens it, so none of them is ever readable by others,
not even for a moment), ``server.json``,
``logs/server.log``, a local blob store. Only the top of the home is set (its first level, and
``logs/``): a private folder hides what is inside it, and files written later (``server.json``,
the log) are created private.

With a job user (``--job-user``, :mod:`tideflow.executors.identity`) the home and the folders
jobs reach through it (:data:`~tideflow.executors.identity.JOB_DIRECTORIES`: ``work``,
``logs``, ``logs/jobs``, ``data``, ``envs``) are ``0710`` with the job user's group: that user
passes through them to its own files by name and can list none of them, while everything else
stays as above -- in particular the database, the blobs and ``server.json`` (which names the
store). They are set straight to their final mode (never ``0700`` first), so jobs still running
from before a restart keep their way in.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from tideflow.executors.identity import JOB_DIRECTORIES, JobUser, pass_through
from tideflow.server.config import ServerConfig

PRIVATE_FILE = 0o600
PRIVATE_DIRECTORY = 0o700
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def secure_home(config: ServerConfig, job_user: JobUser | None) -> None:
    """Make the home private (and passable by ``job_user``), before the store is opened."""
    home = config.home
    home.mkdir(parents=True, exist_ok=True)
    _set(home, job_user, passable=job_user is not None)
    passable = {home / name for name in JOB_DIRECTORIES} if job_user is not None else set()
    for folder in (home, config.log_dir):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for entry in folder.iterdir():
            _set(entry, job_user, passable=entry in passable)
    blobs = local_blob_root(config.blob_root)
    if blobs is not None and (blobs.parent == home or blobs.exists()):
        blobs.mkdir(exist_ok=True, mode=PRIVATE_DIRECTORY)
        _set(blobs, job_user, passable=False)
    private_database(config.db_url)


def private_database(db_url: str) -> None:
    """Make a SQLite store's files ``0600`` (its ``-wal`` and ``-shm`` too, when they exist).

    A database that does not exist yet is created here, empty (which SQLite takes for a new
    database) and ``0600``: SQLite would create it with the umask's mode, and its ``-wal`` and
    ``-shm`` after it with the same.
    """
    path = sqlite_path(db_url)
    if path is None:
        return
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
    with contextlib.suppress(FileExistsError):
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        os.close(os.open(path, flags, PRIVATE_FILE))
    for suffix in _SQLITE_SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            _set(path.with_name(path.name + suffix), None, passable=False)


def sqlite_path(db_url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` store URL; ``None`` for other stores or in memory."""
    prefix = "sqlite:///"
    if not db_url.startswith(prefix):
        return None
    path = db_url[len(prefix) :].split("?", 1)[0]
    return Path(path).expanduser() if path and path != ":memory:" else None


def local_blob_root(blob_root: str) -> Path | None:
    """The directory of a blob store on this machine's disk, or ``None`` (another filesystem)."""
    if blob_root.startswith("file://"):
        return Path(blob_root[len("file://") :])
    return None if "://" in blob_root else Path(blob_root)


def private_file(path: Path) -> int:
    """Open ``path`` for writing as a new ``0600`` file (for ``server.json`` and the like)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)


def _set(path: Path, job_user: JobUser | None, *, passable: bool) -> None:
    """``path`` private (or passable by ``job_user``); a symbolic link is left alone.

    ``path`` is in a folder of the server's, so no job can swap it between the check and the
    change.
    """
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return
    if passable and job_user is not None:
        pass_through(path, job_user)
        return
    mode = PRIVATE_DIRECTORY if stat.S_ISDIR(info.st_mode) else PRIVATE_FILE
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)

"""Files that hold secrets or personal data (the database, the broker's password file
and ACL, the service secret, device credentials): readable by the service's user only.

Modes are set when a file is created (never a moment world-readable, whatever the
umask) and again whenever it is rewritten or found, since a file copied in or left
by an older version keeps the mode it had. SQLite creates its -wal and -shm files
with the database file's own mode, so creating the database 0600 covers all three;
the existing ones are corrected too."""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("pers.files")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def _chmod(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except PermissionError:  # not ours (a tool run as another user): say so, do not crash
        log.warning("cannot restrict the mode of a private file", extra={"path": str(path), "mode": oct(mode)})


def restrict(path: Path) -> None:
    """An existing private file back to 0600."""
    _chmod(path, PRIVATE_FILE)


def private_dir(path: Path) -> Path:
    """The directory, created if needed, 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    _chmod(path, PRIVATE_DIR)
    return path


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """A file descriptor on ``path``, 0600 from the first byte (and now, if it existed)."""
    fd = os.open(path, flags, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically by a 0600 file holding ``text`` (durable: fsynced)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with os.fdopen(open_private(tmp), "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, None for another database or an in-memory one."""
    if not url.startswith("sqlite:///"):
        return None
    name = url[len("sqlite:///"):].split("?", 1)[0]
    return Path(name) if name and name != ":memory:" else None


def private_sqlite(url: str) -> None:
    """Create the database file 0600 before SQLite does (it would use the umask, 0644),
    and restrict one that exists, with its companions."""
    path = sqlite_file(url)
    if path is None or not path.parent.is_dir():
        return  # SQLite will say what is wrong with the path
    if not path.exists():
        os.close(open_private(path, os.O_RDONLY | os.O_CREAT))
    for p in (path, *(path.with_name(path.name + s) for s in SQLITE_COMPANIONS)):
        if p.exists():
            restrict(p)

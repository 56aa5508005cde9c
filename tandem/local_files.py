"""Private files under the state directory (var/): secrets, databases, logs.

Everything Tandem keeps on disk can hold personal data or keys, so directories are
created 0700 and files 0600, whatever the process umask says. Secrets that the owner
did not set are generated once (at first run) and kept here, so that every process of
one install agrees on them and restarts keep signed values valid.
"""

from __future__ import annotations

import os
import secrets
import stat
import time
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, *, tighten: bool = True) -> Path:
    """Create `path` (and missing parents) owner-only. An existing directory is made
    0700 too unless `tighten` is off (a folder the owner chose for the database)."""
    if not path.exists():
        if not path.parent.exists():
            private_dir(path.parent, tighten=False)
        path.mkdir(mode=DIR_MODE, exist_ok=True)
        path.chmod(DIR_MODE)  # mkdir's mode is filtered by the umask
    elif tighten and stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def private_file(path: Path, *, tighten_dir: bool = True) -> Path:
    """Make sure `path` exists owner-only (0600) before anyone else writes to it; an
    existing file is tightened (files from older versions were world-readable).

    SQLite gives its -wal/-shm files the database file's mode, and log files are opened
    for appending, so creating the file first is enough to keep the whole family private.
    """
    private_dir(path.parent, tighten=tighten_dir)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, FILE_MODE)
    os.close(fd)
    if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
        path.chmod(FILE_MODE)
    return path


def write_private(path: Path, text: str) -> Path:
    """Replace `path`'s content; the file is 0600 from its first byte."""
    private_file(path)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def load_or_create_secret(path: Path) -> str:
    """The secret kept in `path`, generated (256 bits, URL-safe) the first time.

    Two processes starting together agree: the file is created exclusively, and the
    loser reads the winner's value.
    """
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        return _read_secret(path)
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def _read_secret(path: Path) -> str:
    # The process that created the file may not have written the value yet.
    for _ in range(50):
        value = path.read_text(encoding="utf-8").strip()
        if value:
            if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
                path.chmod(FILE_MODE)
            return value
        time.sleep(0.02)
    raise ValueError(f"{path} is empty; delete it to generate a new secret")

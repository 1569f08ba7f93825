"""Private files for the embedded default: the data folder and what is in it belong to the
service's user alone (folders 0700, files 0600), since they hold the database, the JWT key,
uploaded documents and their vectors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from app.core.config import Settings

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create a folder (and its parents) and make it 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    path.chmod(PRIVATE_DIR_MODE)


def secure_data_dir(settings: Settings) -> None:
    """Make the data folder 0700 and everything under it 0700 (folders) or 0600 (files).

    Run at start, after the embedded database and Qdrant have created their files, so files
    left by older versions or made with a loose umask are closed too.
    """
    root = settings.data_dir
    make_private_dir(root)
    for folder, folders, files in os.walk(root):
        for name in folders:
            path = Path(folder, name)
            if not path.is_symlink():
                path.chmod(PRIVATE_DIR_MODE)
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(PRIVATE_FILE_MODE)
    sqlite = settings.sqlite_path
    if sqlite is not None and sqlite.exists() and not sqlite.is_relative_to(root):
        sqlite.chmod(PRIVATE_FILE_MODE)


def write_private_file(path: Path, data: bytes) -> None:
    """Write a file that only the service's user can read (created 0600, in a 0700 folder)."""
    make_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)

"""Upload filenames made safe to store and show."""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

from app.core.errors import Unprocessable

MAX_FILENAME_CHARS = 255


def normalise_filename(name: str | None) -> str:
    """The file's own name in NFC, without directories, control characters or invisible format
    characters (bidi overrides such as U+202E make "txt.exe" display as "exe.txt"); a name
    over 255 characters is a 422 `filename_too_long`."""
    raw = unicodedata.normalize("NFC", name or "")
    # Both separators: a Windows client sends C:\\path\\file.txt.
    base = PurePosixPath(PureWindowsPath(raw).name).name
    cleaned = "".join(c for c in base if unicodedata.category(c) not in ("Cc", "Cf")).strip()
    if len(cleaned) > MAX_FILENAME_CHARS:
        raise Unprocessable(
            f"The file name is {len(cleaned)} characters long; at most {MAX_FILENAME_CHARS} "
            "are allowed. Rename the file and upload it again.",
            code="filename_too_long",
            meta={"limit": MAX_FILENAME_CHARS},
        )
    return cleaned if cleaned not in ("", ".", "..") else "upload"

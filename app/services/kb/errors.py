"""Why a document could not be ingested, in words a user can act on."""

from __future__ import annotations


class IngestError(Exception):
    """A document that cannot be turned into chunks; the worker marks it failed with this reason."""

    def __init__(self, code: str, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(reason)

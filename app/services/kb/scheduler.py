"""The ingestion queue: one line per user, served so that no user's files starve another's."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import deque


class FairQueue:
    """Documents waiting for ingestion, a FIFO per user.

    `get` hands out the oldest document of the user with the fewest documents in progress, ties
    going to the user served longest ago: a user who uploads a thousand files shares the workers
    with one who uploads one file instead of queueing them behind all thousand. No user holds
    more than `per_user` workers at once, so with more than one worker a slot stays free for
    the next user even while one user's files take minutes each.
    """

    def __init__(self, per_user: int = 1) -> None:
        self.per_user = max(1, per_user)
        self._pending: dict[uuid.UUID, deque[uuid.UUID]] = {}
        self._owner: dict[uuid.UUID, uuid.UUID] = {}
        self._active: dict[uuid.UUID, uuid.UUID] = {}
        self._active_per_user: dict[uuid.UUID, int] = {}
        self._last_served: dict[uuid.UUID, int] = {}
        self._ticks = itertools.count()
        self._available = asyncio.Event()

    def __contains__(self, document_id: object) -> bool:
        return document_id in self._owner or document_id in self._active

    def pending(self) -> int:
        """How many documents wait (not counting those in progress)."""
        return len(self._owner)

    def put(self, document_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Queue a document; False when it is already waiting or in progress."""
        if document_id in self:
            return False
        self._owner[document_id] = user_id
        self._pending.setdefault(user_id, deque()).append(document_id)
        self._available.set()
        return True

    async def get(self) -> tuple[uuid.UUID, uuid.UUID]:
        """The next (document, user) to process, waiting until there is one."""
        while not (eligible := self._eligible()):
            self._available.clear()
            await self._available.wait()
        user_id = min(
            eligible,
            key=lambda user: (
                self._active_per_user.get(user, 0),
                self._last_served.get(user, -1),
            ),
        )
        line = self._pending[user_id]
        document_id = line.popleft()
        if not line:
            del self._pending[user_id]
        del self._owner[document_id]
        self._active[document_id] = user_id
        self._active_per_user[user_id] = self._active_per_user.get(user_id, 0) + 1
        self._last_served[user_id] = next(self._ticks)
        return document_id, user_id

    def _eligible(self) -> list[uuid.UUID]:
        return [
            user for user in self._pending if self._active_per_user.get(user, 0) < self.per_user
        ]

    def done(self, document_id: uuid.UUID) -> None:
        """Mark a document handed out by `get` as finished (however it ended)."""
        user_id = self._active.pop(document_id, None)
        if user_id is None:
            return
        left = self._active_per_user.get(user_id, 1) - 1
        if left:
            self._active_per_user[user_id] = left
        else:
            self._active_per_user.pop(user_id, None)
        if user_id in self._pending:
            self._available.set()  # the user's next document may start now

    def discard(self, document_id: uuid.UUID) -> bool:
        """Remove a waiting document; True if it was waiting."""
        user_id = self._owner.pop(document_id, None)
        if user_id is None:
            return False
        line = self._pending[user_id]
        line.remove(document_id)
        if not line:
            del self._pending[user_id]
        return True

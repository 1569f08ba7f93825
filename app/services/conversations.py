"""Conversation use cases: list, read with messages, rename, delete (with its checkpoints)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.core.errors import Conflict, NotFound
from app.core.logging import get_logger
from app.core.resources import Resources
from app.models import Conversation, Message
from app.repositories.conversations import ConversationRepository, MessageRepository
from app.repositories.usage import ConversationSums, UsageRepository

log = get_logger(__name__)


class ConversationService:
    """One user's conversations; another user's are 404, never 403."""

    def __init__(self, resources: Resources, user_id: uuid.UUID) -> None:
        self.resources = resources
        self.user_id = user_id

    async def list(self, *, limit: int, offset: int) -> tuple[list[tuple[Conversation, int]], int]:
        """A page of conversations, most recently active first, with message counts."""
        async with self.resources.sessionmaker() as session:
            return await ConversationRepository(session).list_for_user(
                self.user_id, limit=limit, offset=offset
            )

    async def usage(
        self, conversation_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ConversationSums]:
        """Tokens and cost of each conversation, from its usage events (from every API)."""
        async with self.resources.sessionmaker() as session:
            return await UsageRepository(session).by_conversation(conversation_ids)

    async def get(self, conversation_id: uuid.UUID) -> tuple[Conversation, Sequence[Message]]:
        """The conversation and its messages in order (from the app database, not checkpoints)."""
        async with self.resources.sessionmaker() as session:
            conversation = await self._owned(ConversationRepository(session), conversation_id)
            messages = await MessageRepository(session).list_for_conversation(conversation_id)
            return conversation, messages

    async def rename(self, conversation_id: uuid.UUID, title: str) -> Conversation:
        """Set the title."""
        async with self.resources.sessionmaker() as session:
            conversation = await self._owned(ConversationRepository(session), conversation_id)
            conversation.title = title
            conversation.updated_at = self.resources.clock.now()
            await session.commit()
            return conversation

    async def delete(self, conversation_id: uuid.UUID) -> None:
        """Delete the conversation, its messages and runs, and its thread's checkpoints.

        409 while a turn runs on it: the turn would write to a conversation that is gone.
        """
        async with self.resources.sessionmaker() as session:
            conversations = ConversationRepository(session)
            await self._owned(conversations, conversation_id)
            if not await conversations.delete_if_idle(conversation_id, self.user_id):
                raise Conflict(
                    "A turn is still running on this conversation; delete it once it finishes.",
                    code="conversation_busy",
                    meta={"conversation_id": str(conversation_id)},
                )
            await session.commit()
        checkpointer = self.resources.checkpointer
        if checkpointer is not None:
            await checkpointer.adelete_thread(str(conversation_id))
        log.info("conversation_deleted", conversation_id=str(conversation_id))

    async def _owned(
        self, conversations: ConversationRepository, conversation_id: uuid.UUID
    ) -> Conversation:
        conversation = await conversations.get_for_user(conversation_id, self.user_id)
        if conversation is None:
            raise NotFound(
                f"No conversation with id {conversation_id}.", code="conversation_not_found"
            )
        return conversation

"""SQL for user-created assistants and their versions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Assistant, AssistantVersion


class AssistantRepository:
    """Reads and writes assistants within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, assistant_id: uuid.UUID) -> Assistant | None:
        """The assistant with this id, whoever owns it."""
        return await self.session.get(Assistant, assistant_id)

    async def add(self, assistant: Assistant) -> Assistant:
        """Insert an assistant."""
        self.session.add(assistant)
        await self.session.flush()
        return assistant

    async def add_version(self, version: AssistantVersion) -> AssistantVersion:
        """Insert one version of an assistant."""
        self.session.add(version)
        await self.session.flush()
        return version

    async def visible_to(
        self, user_id: uuid.UUID, graph_id: str | None = None
    ) -> Sequence[Assistant]:
        """The assistants of a user (on one graph, when given), oldest first."""
        query = (
            select(Assistant)
            .where(Assistant.user_id == user_id)
            .order_by(Assistant.created_at, Assistant.id)
        )
        if graph_id is not None:
            query = query.where(Assistant.graph_id == graph_id)
        return (await self.session.execute(query)).scalars().all()

    async def versions(self, assistant_id: uuid.UUID) -> Sequence[AssistantVersion]:
        """An assistant's versions, newest first."""
        result = await self.session.execute(
            select(AssistantVersion)
            .where(AssistantVersion.assistant_id == assistant_id)
            .order_by(AssistantVersion.version.desc())
        )
        return result.scalars().all()

    async def version(self, assistant_id: uuid.UUID, version: int) -> AssistantVersion | None:
        """One version of an assistant."""
        return await self.session.get(AssistantVersion, (assistant_id, version))

    async def delete(self, assistant_id: uuid.UUID) -> None:
        """Delete an assistant with its versions."""
        await self.session.execute(
            delete(AssistantVersion).where(AssistantVersion.assistant_id == assistant_id)
        )
        await self.session.execute(delete(Assistant).where(Assistant.id == assistant_id))

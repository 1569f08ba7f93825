"""SQL for the tool switches."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ToolSetting


class ToolSettingRepository:
    """Reads and writes tool switches within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def disabled(self) -> frozenset[str]:
        """The names switched off."""
        rows = await self.session.scalars(
            select(ToolSetting.name).where(ToolSetting.enabled.is_(False))
        )
        return frozenset(rows)

    async def set(
        self, name: str, enabled: bool, user_id: uuid.UUID | None, now: datetime
    ) -> ToolSetting:
        """Switch `name` on or off (inserted on first use)."""
        setting = await self.session.get(ToolSetting, name)
        if setting is None:
            setting = ToolSetting(name=name, enabled=enabled, updated_at=now, updated_by=user_id)
            self.session.add(setting)
        else:
            setting.enabled = enabled
            setting.updated_at = now
            setting.updated_by = user_id
        await self.session.flush()
        return setting

"""API key bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ApiKeyIn(BaseModel):
    """A new key: a name to recognise it by, and when it stops working (never by default)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    expires_at: AwareDatetime | None = None


class ApiKeyOut(BaseModel):
    """A key as listed: never the key itself."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class ApiKeyCreatedOut(ApiKeyOut):
    """A key just created: `key` is shown this once."""

    key: str

"""/api-keys: the caller's API keys (for langgraph-sdk and other clients)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from app.api.deps import CurrentUser, ResourcesDep
from app.api.schemas.api_keys import ApiKeyCreatedOut, ApiKeyIn, ApiKeyOut
from app.services.api_keys import ApiKeyService

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])


def get_api_key_service(resources: ResourcesDep) -> ApiKeyService:
    """API key use cases."""
    return ApiKeyService(resources)


ApiKeyServiceDep = Annotated[ApiKeyService, Depends(get_api_key_service)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyIn, user: CurrentUser, keys: ApiKeyServiceDep
) -> ApiKeyCreatedOut:
    """Create a key; the answer holds the key itself, shown this once (store it now)."""
    row, key = await keys.create(user.id, body.name, body.expires_at)
    return ApiKeyCreatedOut.model_validate(
        ApiKeyOut.model_validate(row).model_dump() | {"key": key}
    )


@router.get("")
async def list_api_keys(user: CurrentUser, keys: ApiKeyServiceDep) -> list[ApiKeyOut]:
    """Your active keys: name, prefix, created, last used, expiry; never the key."""
    return [ApiKeyOut.model_validate(row) for row in await keys.list(user.id)]


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: uuid.UUID, user: CurrentUser, keys: ApiKeyServiceDep) -> None:
    """Revoke a key: requests with it answer 401 from now on."""
    await keys.revoke(user.id, key_id)

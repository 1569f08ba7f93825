"""/users: the caller's profile and, for admins, user management."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from app.api.deps import AdminUser, CallerDep, ClockDep, PageDep, SessionDep, SettingsDep
from app.api.routes.kb import KnowledgeBaseDep
from app.api.routes.memory import MemoryServiceDep
from app.api.schemas.auth import (
    AdminUserCreateIn,
    AdminUserUpdateIn,
    InviteIn,
    InviteOut,
    MeUpdateIn,
    UserOut,
)
from app.api.schemas.common import PageOut
from app.services.users import AdminChange, ProfileChange, UserService

router = APIRouter(prefix="/api/v1/users", tags=["users"])


def get_user_service(session: SessionDep, settings: SettingsDep, clock: ClockDep) -> UserService:
    """User use cases bound to this request's session."""
    return UserService(session, settings, clock)


UserServiceDep = Annotated[UserService, Depends(get_user_service)]


@router.get("/me")
async def read_me(caller: CallerDep) -> UserOut:
    """The signed-in user."""
    return UserOut.model_validate(caller.user)


@router.patch("/me")
async def update_me(body: MeUpdateIn, caller: CallerDep, users: UserServiceDep) -> UserOut:
    """Change your name or password (with the current password)."""
    change = ProfileChange(
        full_name=body.full_name,
        password=body.password,
        current_password=body.current_password,
        full_name_set="full_name" in body.model_fields_set,
    )
    user = await users.update_me(caller.user, change, caller.claims.session_id)
    return UserOut.model_validate(user)


@router.get("")
async def list_users(_: AdminUser, users: UserServiceDep, page: PageDep) -> PageOut[UserOut]:
    """All users, oldest first (admin)."""
    items, total = await users.list(limit=page.limit, offset=page.offset)
    return PageOut[UserOut](
        items=[UserOut.model_validate(u) for u in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(body: AdminUserCreateIn, admin: AdminUser, users: UserServiceDep) -> UserOut:
    """Create an account (admin); the way in when MAI_REGISTRATION is invite or closed."""
    user = await users.create(
        admin, email=body.email, password=body.password, full_name=body.full_name, role=body.role
    )
    return UserOut.model_validate(user)


@router.post("/invites", status_code=status.HTTP_201_CREATED)
async def create_invite(body: InviteIn, admin: AdminUser, users: UserServiceDep) -> InviteOut:
    """Issue a single-use invite code for POST /auth/register (admin); shown only once."""
    invite, code = await users.create_invite(admin, body.email)
    return InviteOut(id=invite.id, code=code, email=invite.email, expires_at=invite.expires_at)


@router.get("/{user_id}")
async def read_user(user_id: uuid.UUID, _: AdminUser, users: UserServiceDep) -> UserOut:
    """One user (admin)."""
    return UserOut.model_validate(await users.get(user_id))


@router.patch("/{user_id}")
async def update_user(
    user_id: uuid.UUID, body: AdminUserUpdateIn, admin: AdminUser, users: UserServiceDep
) -> UserOut:
    """Change a user's role, active flag or daily token budget (admin)."""
    change = AdminChange(
        role=body.role,
        is_active=body.is_active,
        daily_token_budget=body.daily_token_budget,
        daily_token_budget_set="daily_token_budget" in body.model_fields_set,
    )
    user = await users.admin_update(admin, user_id, change)
    return UserOut.model_validate(user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(
    user_id: uuid.UUID,
    admin: AdminUser,
    users: UserServiceDep,
    kb: KnowledgeBaseDep,
    memory: MemoryServiceDep,
) -> None:
    """Delete a user and everything they own (admin): knowledge-base files, vectors, memories."""
    await users.delete(admin, user_id)
    await kb.purge_user(user_id)
    await memory.forget_user(str(user_id))

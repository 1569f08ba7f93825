"""Shapes shared by every route: pages and the error body."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    limit: int
    offset: int


class ErrorOut(BaseModel):
    """The one JSON error shape."""

    error: str
    detail: str
    request_id: str | None = None
    meta: dict[str, object] | None = None

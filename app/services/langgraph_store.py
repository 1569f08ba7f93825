"""The LangGraph store API's use cases: items and namespaces of the app's store, per caller.

Ownership: a caller who is not an admin only touches namespaces under `("users", <their id>)`
(their memories live at `("users", <id>, "memories")`); naming any other namespace is a 403.
A search or a namespace listing without a prefix is narrowed to the caller's own namespaces.
Admins may use any namespace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langgraph.store.base import (
    NOT_PROVIDED,
    BaseStore,
    InvalidNamespaceError,
    Item,
    NotProvided,
    SearchItem,
)

from app.core.errors import Forbidden, Unprocessable
from app.core.resources import Resources
from app.models import User
from app.services.memory import memory_store

Namespace = tuple[str, ...]
# A ttl left out of the request: the store's default TTL (MAI_MEMORY_TTL_DAYS) applies.
DEFAULT_TTL: NotProvided = NOT_PROVIDED


def check_labels(namespace: Sequence[str]) -> Namespace:
    """The namespace as a tuple; 422 for an empty label or one with a period (as LangGraph)."""
    for label in namespace:
        if not label or "." in label:
            raise Unprocessable(
                "Namespace labels cannot be empty or contain periods. "
                f"Received: {'.'.join(namespace)!r}",
                code="invalid_namespace",
            )
    return tuple(namespace)


class LangGraphStoreService:
    """One caller's view of the store, through LangGraph's own `BaseStore` operations."""

    def __init__(self, resources: Resources, user: User) -> None:
        self.resources = resources
        self.user = user
        self.own: Namespace = ("users", str(user.id))

    @property
    def store(self) -> BaseStore:
        """The app's store (503 when it did not open at start)."""
        return memory_store(self.resources)

    def _owned(self, namespace: Namespace) -> Namespace:
        """`namespace` if the caller may use it; 403 otherwise."""
        if self.user.is_admin or namespace[: len(self.own)] == self.own:
            return namespace
        raise Forbidden(
            f"Namespace {'.'.join(namespace) or '(root)'!r} is not yours: use namespaces "
            f"under {list(self.own)}.",
            code="namespace_forbidden",
        )

    def _prefix(self, prefix: Sequence[str] | None) -> Namespace | None:
        """A search or listing prefix: the caller's own root when none is given (non-admins)."""
        if not prefix:
            return None if self.user.is_admin else self.own
        return self._owned(check_labels(prefix))

    async def put(
        self,
        namespace: Sequence[str],
        key: str,
        value: Mapping[str, Any],
        *,
        index: Literal[False] | list[str] | None,
        ttl: float | NotProvided | None,
    ) -> None:
        """Store or replace an item (`ttl` in minutes; None keeps it forever)."""
        owned = self._owned(check_labels(namespace))
        try:
            await self.store.aput(owned, key, dict(value), index=index, ttl=ttl)
        except InvalidNamespaceError as error:
            raise Unprocessable(str(error), code="invalid_namespace") from error

    async def get(
        self, namespace: Sequence[str], key: str, *, refresh_ttl: bool | None
    ) -> Item | None:
        """One item, or None when there is none (LangGraph answers null, not 404)."""
        owned = self._owned(check_labels(namespace))
        return await self.store.aget(owned, key, refresh_ttl=refresh_ttl)

    async def delete(self, namespace: Sequence[str], key: str) -> None:
        """Delete an item (a missing one is not an error, as in LangGraph)."""
        owned = self._owned(check_labels(namespace))
        await self.store.adelete(owned, key)

    async def search(
        self,
        namespace_prefix: Sequence[str],
        *,
        filter: Mapping[str, Any] | None,
        query: str | None,
        limit: int,
        offset: int,
        refresh_ttl: bool | None,
    ) -> list[SearchItem]:
        """Items under a prefix: by meaning with `query`, matching `filter` on their values."""
        prefix = self._prefix(namespace_prefix) or ()
        try:
            return await self.store.asearch(
                prefix,
                query=query or None,
                filter=dict(filter) if filter else None,
                limit=limit,
                offset=offset,
                refresh_ttl=refresh_ttl,
            )
        except ValueError as error:
            if not filter:
                raise
            # LangGraph's store rejects unknown operators ($foo) and unsafe keys in filters.
            raise Unprocessable(f"filter: {error}", code="invalid_filter") from error

    async def namespaces(
        self,
        *,
        prefix: Sequence[str] | None,
        suffix: Sequence[str] | None,
        max_depth: int | None,
        limit: int,
        offset: int,
    ) -> list[Namespace]:
        """The namespaces holding items, under `prefix` and ending with `suffix`."""
        return await self.store.alist_namespaces(
            prefix=self._prefix(prefix),
            suffix=check_labels(suffix) if suffix else None,
            max_depth=max_depth,
            limit=limit,
            offset=offset,
        )

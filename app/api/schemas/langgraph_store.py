"""Request and response bodies of the LangGraph store API (`/store/...`), in LangGraph's shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from langgraph.store.base import Item, SearchItem
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Label = Annotated[str, Field(max_length=256)]
MAX_OFFSET = 2**31 - 1
# A century: far past any use, and well inside what a timestamp can hold.
MAX_TTL_MINUTES = 100 * 365 * 24 * 60
NamespaceIn = Annotated[list[Label], Field(max_length=32)]
Key = Annotated[str, Field(min_length=1, max_length=1024)]


def _utc(moment: datetime) -> datetime:
    """The SQLite store keeps UTC times without an offset; answers always carry one."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


StoreTime = Annotated[datetime, AfterValidator(_utc)]


class StorePutIn(BaseModel):
    """`PUT /store/items`: store or replace one item."""

    model_config = ConfigDict(extra="ignore")

    namespace: Annotated[NamespaceIn, Field(min_length=1)]
    key: Key
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = Field(
        default=None, description="Fields to embed; false: none; null: the store's default."
    )
    ttl: float | None = Field(
        default=None,
        gt=0,
        le=MAX_TTL_MINUTES,
        description="Minutes until it expires (null: never; left out: the default).",
    )


class StoreDeleteIn(BaseModel):
    """`DELETE /store/items`: delete one item."""

    model_config = ConfigDict(extra="ignore")

    namespace: Annotated[NamespaceIn, Field(min_length=1)]
    key: Key


class StoreSearchIn(BaseModel):
    """`POST /store/items/search`: items under a namespace prefix."""

    model_config = ConfigDict(extra="ignore")

    namespace_prefix: NamespaceIn = Field(default_factory=list)
    filter: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    query: Annotated[str, Field(max_length=5000)] | None = None
    refresh_ttl: bool | None = None


class StoreNamespacesIn(BaseModel):
    """`POST /store/namespaces`: the namespaces that hold items."""

    model_config = ConfigDict(extra="ignore")

    prefix: NamespaceIn | None = None
    suffix: NamespaceIn | None = None
    max_depth: int | None = Field(default=None, ge=1, le=100)
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class StoreItemOut(BaseModel):
    """One stored item, as LangGraph's server returns it."""

    namespace: list[str]
    key: str
    value: dict[str, Any]
    created_at: StoreTime
    updated_at: StoreTime

    @classmethod
    def of(cls, item: Item) -> StoreItemOut:
        """From the store's item."""
        return cls(
            namespace=list(item.namespace),
            key=item.key,
            value=item.value,
            created_at=item.created_at,
            updated_at=item.updated_at,
        )


class SearchItemOut(StoreItemOut):
    """A found item, with its similarity to the query when there was one."""

    score: float | None = None

    @classmethod
    def found(cls, item: SearchItem) -> SearchItemOut:
        """From the store's search result."""
        return cls(
            namespace=list(item.namespace),
            key=item.key,
            value=item.value,
            created_at=item.created_at,
            updated_at=item.updated_at,
            score=item.score,
        )


class SearchItemsOut(BaseModel):
    """The items a search found."""

    items: list[SearchItemOut]


class NamespacesOut(BaseModel):
    """The namespaces a listing found."""

    namespaces: list[list[str]]

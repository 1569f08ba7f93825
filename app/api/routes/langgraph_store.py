"""The LangGraph store API at the service root (`/store/...`), as LangGraph's server has it, so
`langgraph-sdk`'s `client.store` works. Callers authenticate like the other LangGraph routes
(an API key in `X-Api-Key` or a bearer token); non-admins only reach `("users", <their id>, ...)`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.api.deps import KeyOrTokenUser, ResourcesDep
from app.api.schemas.langgraph_store import (
    NamespacesOut,
    SearchItemOut,
    SearchItemsOut,
    StoreDeleteIn,
    StoreItemOut,
    StoreNamespacesIn,
    StorePutIn,
    StoreSearchIn,
)
from app.services.langgraph_store import DEFAULT_TTL, LangGraphStoreService

router = APIRouter(prefix="/store", tags=["langgraph"])


def get_store_service(resources: ResourcesDep, user: KeyOrTokenUser) -> LangGraphStoreService:
    """The store, as the caller may use it."""
    return LangGraphStoreService(resources, user)


StoreService = Annotated[LangGraphStoreService, Depends(get_store_service)]


@router.put("/items", status_code=status.HTTP_204_NO_CONTENT)
async def put_item(body: StorePutIn, store: StoreService) -> Response:
    """Store or replace an item (a `content` field is embedded for semantic search)."""
    await store.put(
        body.namespace,
        body.key,
        body.value,
        index=body.index,
        ttl=body.ttl if "ttl" in body.model_fields_set else DEFAULT_TTL,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/items")
async def get_item(
    store: StoreService,
    namespace: Annotated[str, Query(description="The namespace, its labels joined by periods")],
    key: Annotated[str, Query(min_length=1, max_length=1024)],
    refresh_ttl: bool | None = None,
) -> StoreItemOut | None:
    """One item, or null when there is none."""
    item = await store.get(namespace.split("."), key, refresh_ttl=refresh_ttl)
    return StoreItemOut.of(item) if item is not None else None


@router.delete("/items", status_code=status.HTTP_204_NO_CONTENT)
async def delete_item(body: StoreDeleteIn, store: StoreService) -> Response:
    """Delete an item."""
    await store.delete(body.namespace, body.key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/items/search")
async def search_items(body: StoreSearchIn, store: StoreService) -> SearchItemsOut:
    """Items under a namespace prefix, by meaning with `query`, filtered on their values."""
    found = await store.search(
        body.namespace_prefix,
        filter=body.filter,
        query=body.query,
        limit=body.limit,
        offset=body.offset,
        refresh_ttl=body.refresh_ttl,
    )
    return SearchItemsOut(items=[SearchItemOut.found(item) for item in found])


@router.post("/namespaces")
async def list_namespaces(body: StoreNamespacesIn, store: StoreService) -> NamespacesOut:
    """The namespaces that hold items, filtered by prefix, suffix and depth."""
    found = await store.namespaces(
        prefix=body.prefix,
        suffix=body.suffix,
        max_depth=body.max_depth,
        limit=body.limit,
        offset=body.offset,
    )
    return NamespacesOut(namespaces=[list(namespace) for namespace in found])

"""The LangGraph store API in-process, on both backends: what the SDK test does not send (bad
input, filters the store rejects, per-item TTLs) answers 4xx in MAI's error shape, never 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from tests.conftest import AppFactory, client_for, register
from tests.kb.support import HashEmbedder


@pytest.fixture
async def http(app_factory: AppFactory, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app with the deterministic embedding."""
    app: FastAPI = await app_factory(settings, embedder=HashEmbedder())
    async with client_for(app) as client:
        yield client


async def test_bad_input_is_a_4xx_and_ttls_are_kept(http: httpx.AsyncClient) -> None:
    ann = await register(http)
    mine = ["users", ann.id, "memories"]
    headers = ann.headers

    # A per-item TTL (minutes) is accepted on both backends; the item is there until it expires.
    put = await http.put(
        "/store/items",
        json={"namespace": mine, "key": "k", "value": {"content": "Rex is my dog"}, "ttl": 60},
        headers=headers,
    )
    assert put.status_code == 204, put.text
    got = await http.get(
        "/store/items", params={"namespace": ".".join(mine), "key": "k"}, headers=headers
    )
    assert got.json()["value"] == {"content": "Rex is my dog"}

    bad_requests = [
        ("put", {"namespace": [*mine[:2], ""], "key": "k", "value": {}}, "invalid_namespace"),
        ("put", {"namespace": mine, "key": "", "value": {}}, "validation_error"),
        ("put", {"namespace": mine, "key": "k", "value": {}, "ttl": 0}, "validation_error"),
        ("put", {"namespace": mine, "key": "k", "value": {}, "ttl": 1e300}, "validation_error"),
        ("search", {"namespace_prefix": mine, "filter": {"a": {"$foo": 1}}}, "invalid_filter"),
        ("search", {"namespace_prefix": mine, "offset": 2**40}, "validation_error"),
        ("namespaces", {"max_depth": 0}, "validation_error"),
    ]
    paths = {
        "put": "/store/items",
        "search": "/store/items/search",
        "namespaces": "/store/namespaces",
    }
    for kind, body, code in bad_requests:
        path = paths[kind]
        if kind == "put":
            answer = await http.put(path, json=body, headers=headers)
        else:
            answer = await http.post(path, json=body, headers=headers)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["error"] == code, (body, answer.text)
    empty = await http.get("/store/items", params={"namespace": "", "key": "k"}, headers=headers)
    assert empty.status_code == 422, empty.text

    # Filters the store supports work: comparison operators on value fields.
    found = await http.post(
        "/store/items/search",
        json={"namespace_prefix": mine, "filter": {"content": {"$eq": "Rex is my dog"}}},
        headers=headers,
    )
    assert [item["key"] for item in found.json()["items"]] == ["k"]

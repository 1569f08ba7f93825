"""Cited answers through the agent API: the knowledge route searches the user's documents
before the model answers, and [n] markers become citations."""

from __future__ import annotations

import pytest

from tests.conftest import AppFactory, SettingsFactory, client_for, register
from tests.fake_llm import scripted
from tests.kb.support import HashEmbedder, ingest, make_pdf

pytestmark = pytest.mark.usefixtures("backend")


async def test_knowledge_answer_cites_the_users_documents(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    # The model never asks for kb_search: the graph searches on its own, and [7] is invented.
    model = scripted(
        {"route": "knowledge"},
        "An amber light with ERR-4471 means the fan failed [1] [7].",
    )
    settings = settings_factory(rate_limit_per_minute=0)
    app = await app_factory(settings, embedder=HashEmbedder(), chat_model=model)
    async with client_for(app) as client:
        alice, bob = await register(client), await register(client)
        guide = await ingest(
            client,
            alice.headers,
            "guide.pdf",
            make_pdf(
                [
                    ["Installation", "Unpack the router and plug it in."],
                    [
                        "Troubleshooting",
                        "A blinking amber light means error ERR-4471: fan failure.",
                    ],
                ]
            ),
            title="Router guide",
        )
        await ingest(client, alice.headers, "other.txt", b"Lunch is served at noon.")
        # Another user's document on the same subject must never be cited to Alice.
        await ingest(client, bob.headers, "bob.txt", b"ERR-4471 amber light: Bob's own notes.")

        response = await client.post(
            "/api/v1/agent/query",
            headers=alice.headers,
            json={"message": "What does the amber light with ERR-4471 mean?"},
        )
        assert response.status_code == 200, response.text
        turn = response.json()
        assert turn["answer"] == "An amber light with ERR-4471 means the fan failed [1]."
        assert [c["name"] for c in turn["tool_calls"]] == ["kb_search"]
        assert turn["tool_calls"][0]["args"] == {
            "query": "What does the amber light with ERR-4471 mean?"
        }
        assert "[1] Router guide (page 2" in str(turn["tool_calls"][0]["result"])
        assert "Bob" not in str(turn["tool_calls"][0]["result"])
        [citation] = turn["citations"]
        assert citation["number"] == 1
        assert citation["document_id"] == guide["id"]
        assert citation["title"] == "Router guide"
        assert citation["page"] == 2
        assert "ERR-4471" in citation["snippet"]
        assert citation["score"] > 0


async def test_knowledge_turn_when_qdrant_is_down(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    model = scripted(
        {"route": "knowledge"},
        "I could not search your documents, but usually holidays are set by HR.",
    )
    settings = settings_factory(qdrant_url="http://127.0.0.1:9", rate_limit_per_minute=0)
    app = await app_factory(settings, embedder=HashEmbedder(), chat_model=model)
    async with client_for(app) as client:
        account = await register(client)
        response = await client.post(
            "/api/v1/agent/query",
            headers=account.headers,
            json={"message": "What is the holiday policy?"},
        )
        assert response.status_code == 200, response.text
        turn = response.json()
        [run] = turn["tool_calls"]
        assert run["status"] == "error"
        assert "The knowledge base could not be searched" in str(run["result"])
        assert "127.0.0.1:9" in str(run["result"])
        assert turn["citations"] == []
        assert "could not search" in turn["answer"]

"""Cited answers through the agent API: the knowledge route searches the user's documents
before the model answers, and [n] markers become citations."""

from __future__ import annotations

import uuid

import pytest

from app.models import Role, User
from tests.api.agent_helpers import parse_sse
from tests.conftest import AppFactory, SettingsFactory, client_for, register
from tests.fake_llm import scripted
from tests.kb.support import HashEmbedder, ingest, make_pdf, wait_done

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


async def test_citations_name_the_collection_of_each_passage(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    answer = "Parental leave lasts sixteen weeks [1], and the team plans cover for it [2]."
    # Three turns: the agent API, its stream, and the OpenAI-compatible endpoint.
    model = scripted(*[reply for _ in range(3) for reply in ({"route": "knowledge"}, answer)])
    settings = settings_factory(rate_limit_per_minute=0)
    app = await app_factory(settings, embedder=HashEmbedder(), chat_model=model)
    async with client_for(app) as client:
        admin, alice = await register(client), await register(client)
        resources = app.state.resources
        async with resources.sessionmaker() as session:
            account = await session.get(User, uuid.UUID(admin.id))
            assert account is not None
            account.role = Role.admin.value
            await session.commit()
        response = await client.post(
            "/api/v1/kb/collections",
            headers=admin.headers,
            json={"name": "handbook", "visibility": "shared"},
        )
        assert response.status_code == 201, response.text
        response = await client.post(
            f"/api/v1/kb/collections/{response.json()['id']}/documents",
            headers=admin.headers,
            files={"file": ("leave.txt", b"Parental leave lasts sixteen weeks.", "text/plain")},
        )
        assert response.status_code == 202, response.text
        shared = await wait_done(client, admin.headers, response.json()["id"])
        own = await ingest(
            client, alice.headers, "plan.txt", b"Our team plans cover for parental leave weeks."
        )
        expected = {shared["id"]: "handbook", own["id"]: None}
        question = {"message": "How long is parental leave?"}

        response = await client.post("/api/v1/agent/query", headers=alice.headers, json=question)
        assert response.status_code == 200, response.text
        turn = response.json()
        assert {c["document_id"]: c["collection"] for c in turn["citations"]} == expected
        # The kb_search result the model read names the collection too.
        assert "collection handbook" in str(turn["tool_calls"][0]["result"])

        response = await client.post("/api/v1/agent/stream", headers=alice.headers, json=question)
        assert response.status_code == 200, response.text
        events, _ = parse_sse(response.text)
        values = events[-2].data
        assert {c["document_id"]: c["collection"] for c in values["citations"]} == expected

        response = await client.post(
            "/v1/chat/completions",
            headers=alice.headers,
            json={
                "model": "mai-assistant",
                "messages": [{"role": "user", "content": question["message"]}],
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert {c["document_id"]: c["collection"] for c in body["mai"]["citations"]} == expected
        sources = body["choices"][0]["message"]["content"].split("\n\nSources:\n", 1)[1]
        assert {line.split("] ", 1)[1] for line in sources.splitlines()} == {
            "leave (handbook)",
            "plan",
        }

"""Documents as people write them: page chrome, titles, outlines, admonitions, tables, sizes."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from app.services.kb.chunking import (
    Chunker,
    RegexTokenCounter,
    TokenCounter,
    chunk_size,
    model_window,
    token_counter_for,
)
from app.services.kb.html_parsing import parse_html
from app.services.kb.isolation import ChunkingSpec, ParseLimits, parse_and_chunk
from app.services.kb.parsing import parse_markdown
from app.services.kb.sparse import average_terms, document_vector
from tests.conftest import Account, unavailable
from tests.kb.docsite_corpus import PAGES, Page, render
from tests.kb.support import ingest, make_pdf

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CHROME = re.compile(
    r"Created using Sphinx|Previous topic|Next topic|Quick search|Table of Contents|"
    r"\bPrev\b|\bHome\b|\bNavigation\b|General Index|Zephyr Router 2\.1 documentation|\u00b6"
)
LIMITS = ParseLimits(
    max_memory_mb=1024, timeout_seconds=60, max_text_chars=5_000_000, max_unpacked_bytes=1 << 28
)


def minilm() -> Path | None:
    """The shared MiniLM folder, wherever the checkout sits next to it."""
    here = Path(__file__).resolve()
    for base in here.parents:
        candidate = base / "shared" / "models" / "minilm-onnx-int8"
        if candidate.is_dir():
            return candidate
    return None


def counter() -> TokenCounter:
    """The model's tokenizer when the shared model is here, else the estimator."""
    return token_counter_for(minilm())


def page_title(page: Page) -> str:
    number = PAGES.index(page) + 1
    return f"Chapter {number}. {page.title}" if page.style == "docbook" else page.title


def chunks_of(page: Page, max_tokens: int = 254, min_tokens: int = 50) -> list:  # type: ignore[type-arg]
    spec = ChunkingSpec(minilm(), max_tokens=max_tokens, overlap=32, min_tokens=min_tokens)
    return parse_and_chunk(render(page), "html", LIMITS, spec).chunks


def by_slug(slug: str) -> Page:
    return next(page for page in PAGES if page.slug == slug)


@pytest.mark.parametrize("page", PAGES, ids=[page.slug for page in PAGES])
def test_pages_lose_their_chrome_and_keep_their_title(page: Page) -> None:
    parsed = parse_html(render(page))
    assert parsed.title == page_title(page)
    chunks = chunks_of(page)
    assert chunks
    for chunk in chunks:
        assert not CHROME.search(chunk.text), chunk.text
        assert chunk.context.startswith(page_title(page)), chunk.context
        assert chunk.embed_text.startswith(page_title(page))
        assert not chunk.text.startswith(page_title(page) + "\n" + page_title(page))
    # The intro is content, the sidebar's list of every page is not.
    text = "\n".join(chunk.text for chunk in chunks)
    assert page.intro[:40] in text
    others = [p.title for p in PAGES if p is not page and p.title not in text]
    assert len(others) == len(PAGES) - 1, "no other page's title leaks in from the navigation"


def test_text_after_an_admonition_stays_in_its_section() -> None:
    parsed = parse_html(render(by_slug("wireless")))
    after = next(block for block in parsed.blocks if block.text.startswith("Because of that radar"))
    assert after.path == ("Choosing channels",)
    assert after.section == "Choosing channels"
    assert not any(block.heading and block.text == "Warning" for block in parsed.blocks)
    # DocBook marks the box's label up as <h3 class="title">: still not a section.
    parsed = parse_html(render(by_slug("firmware")))
    after = next(block for block in parsed.blocks if block.text.startswith("If an update fails"))
    assert after.path == ("Automatic updates",)


def test_parameter_entries_are_sections_named_by_their_term() -> None:
    parsed = parse_html(render(by_slug("wireless")))
    entry = next(block for block in parsed.blocks if block.text.startswith("Transmit power"))
    assert entry.path == ("Configuration parameters", "wifi.tx_power")
    assert entry.section == "wifi.tx_power"
    headings = [block.text for block in parsed.blocks if block.heading]
    assert headings[-3:] == ["wifi.channel", "wifi.tx_power", "wifi.band_steering"]
    chunk = next(c for c in chunks_of(by_slug("wireless")) if "Transmit power" in c.text)
    assert "wifi.tx_power\n\nTransmit power" in chunk.text


def test_every_chunk_of_a_split_table_carries_the_header() -> None:
    chunks = chunks_of(by_slug("errors"), max_tokens=80, min_tokens=20)
    rows = [chunk for chunk in chunks if "E" in chunk.text and re.search(r"E\d{3}", chunk.text)]
    assert len(rows) >= 3, "the table is split over several chunks"
    for chunk in rows:
        for line in chunk.text.split("\n"):
            if re.search(r"\bE\d{3}\b", line) and not line.startswith(("Action:", "Meaning:")):
                assert line.startswith("Code: E"), line
        assert "Meaning:" in chunk.text
        assert "Action:" in chunk.text
    assert any("Code: E502\nMeaning: The USB drive is not formatted" in c.text for c in chunks)


@pytest.mark.parametrize("page", PAGES, ids=[page.slug for page in PAGES])
def test_no_chunk_under_the_minimum_or_over_the_model_window(page: Page) -> None:
    model = minilm()
    if model is None:
        # Skipped on a developer's machine without ../shared; a failure in CI, where it is.
        unavailable("the shared MiniLM model (../shared/models/minilm-onnx-int8)")
        return
    window = model_window(model, MODEL)
    assert window == 256
    size = chunk_size(None, model, MODEL, 512)
    assert size == 254
    tokenizer = token_counter_for(model)
    chunks = chunks_of(page, max_tokens=size, min_tokens=50)
    for chunk in chunks:
        embedded = len(tokenizer.spans(chunk.embed_text)) + 2  # [CLS] ... [SEP]
        assert embedded <= window, (embedded, chunk.text[:80])
        if len(chunks) > 1:
            assert chunk.tokens >= 50, (chunk.tokens, chunk.text)


def test_small_sections_merge_but_a_whole_short_document_is_one_chunk() -> None:
    blocks = parse_markdown(
        b"# Guide\n\nShort intro.\n\n## One\n\nTiny.\n\n## Two\n\nAlso tiny.\n"
    ).blocks
    _, chunks = Chunker(RegexTokenCounter(), max_tokens=100, overlap=10, min_tokens=50).split(
        blocks, "Guide"
    )
    assert len(chunks) == 1
    assert chunks[0].text.startswith("Guide")
    assert "Also tiny." in chunks[0].text
    # Without a minimum every heading starts its own chunk, as before.
    _, chunks = Chunker(RegexTokenCounter(), max_tokens=100, overlap=10).split(blocks, "Guide")
    assert [chunk.section for chunk in chunks] == [None, "One", "Two"]
    assert chunks[2].context == "Guide \u203a Two"


def test_markdown_front_matter_title_and_tables() -> None:
    data = (
        b"---\ntitle: Release notes\nauthor: Docs team\n---\n\n# Version 3\n\n"
        b"| Flag | Default | Meaning |\n|---|---|---|\n| --fast | off | Skips the checks |\n"
        b"| --dry-run | on | Prints what would change |\n"
    )
    parsed = parse_markdown(data)
    assert parsed.title == "Release notes"
    text = "\n".join(block.text for block in parsed.blocks)
    assert "author" not in text, "front matter is not content"
    assert "Flag: --dry-run\nDefault: on\nMeaning: Prints what would change" in text
    assert parsed.blocks[-1].path == ("Version 3",)


@pytest.mark.usefixtures("backend")
async def test_titles_come_from_the_documents(client: httpx.AsyncClient, user: Account) -> None:
    page = by_slug("wireless")
    doc = await ingest(client, user.headers, "wireless.html", render(page))
    assert doc["status"] == "ready", doc
    assert doc["title"] == "Wireless networks"
    lines = ["Release checklist", "Sign the artefacts with the offline key before publishing."]
    pdf = make_pdf([lines * 3], title="Release handbook")
    doc = await ingest(client, user.headers, "handbook.pdf", pdf)
    assert doc["title"] == "Release handbook"
    named = await ingest(
        client, user.headers, "notes.md", b"# Ignored heading\n\nBody text.", title="Mine"
    )
    assert named["title"] == "Mine", "a title the user gives wins"
    response = await client.post(
        "/api/v1/kb/search",
        headers=user.headers,
        json={"query": "transmit power percent", "mode": "sparse", "top_k": 1},
    )
    hit = response.json()["results"][0]
    assert hit["title"] == "Wireless networks"
    assert not hit["text"].startswith("Wireless networks \u203a"), "the context is not shown"
    filler = " ".join(f"Step {n} of the procedure is described in this sentence." for n in range(9))
    guide = f"# Guide\n\nIntro. {filler}\n\n## Install\n\n### Linux\n\n{filler} Run quokka-setup."
    doc = await ingest(client, user.headers, "guide.md", guide.encode())
    assert doc["title"] == "Guide"
    response = await client.post(
        "/api/v1/kb/search",
        headers=user.headers,
        json={"query": "quokka-setup", "mode": "sparse", "top_k": 1},
    )
    hit = response.json()["results"][0]
    assert hit["heading_path"] == ["Install", "Linux"]
    assert hit["section"] == "Linux"
    response = await client.post(
        "/api/v1/kb/search",
        headers=user.headers,
        json={"query": "Created using Sphinx previous topic", "mode": "sparse"},
    )
    assert all(not CHROME.search(r["text"]) for r in response.json()["results"])


def test_keyword_weights_are_normalised_by_the_chunk_size() -> None:
    average = average_terms(254)
    assert 60 <= average <= 90
    words = " ".join(f"word{n}" for n in range(int(average) - 1))
    # BM25: a term seen once in a chunk of average length weighs exactly 1...
    _, values = document_vector(f"pump {words}", average)
    assert max(values) == pytest.approx(1.0, rel=0.01)
    # ...a shorter chunk weighs it up, a longer one down; with the old fixed average of 250
    # terms every chunk of today's size counted as short.
    _, short = document_vector("pump valve", average)
    _, long = document_vector(f"pump {words} {words}", average)
    assert max(short) > 1.0 > min(long)
    _, old = document_vector(f"pump {words}", 250.0)
    assert min(old) > 1.0

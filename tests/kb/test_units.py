"""Type detection, parsing, chunking, keyword vectors and the OpenAI-compatible embedder."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.core.errors import UnsupportedMediaType
from app.services.kb.chunking import Chunker, RegexTokenCounter, token_counter_for
from app.services.kb.embeddings import EmbeddingUnavailable, OpenAIEmbedder, create_embedder
from app.services.kb.errors import IngestError
from app.services.kb.parsing import detect_kind, parse
from app.services.kb.sparse import document_vector, query_vector, terms
from app.services.kb.text import Block
from tests.conftest import unavailable
from tests.kb.support import make_docx, make_docx_bomb, make_pdf

# The shared models sit next to the checkout (or next to the folder of worktrees).
MODEL_DIR = next(
    (
        base / "shared" / "models" / "minilm-onnx-int8"
        for base in Path(__file__).resolve().parents
        if (base / "shared" / "models" / "minilm-onnx-int8").is_dir()
    ),
    Path(__file__).resolve().parents[2] / ".." / "shared" / "models" / "minilm-onnx-int8",
)


@pytest.mark.parametrize(
    ("filename", "data", "kind"),
    [
        ("a.pdf", make_pdf([["hello"]]), "pdf"),
        ("a.docx", make_docx([("p", "hello")]), "docx"),
        ("a.html", b"<!DOCTYPE html><html><body><p>x</p></body></html>", "html"),
        ("a.txt", b"<html><body>x</body></html>", "html"),
        ("a.htm", b"no tags at all", "text"),
        ("a.md", b"plain words", "markdown"),
        ("a", b"# Title\n\nSome *markdown*.", "markdown"),
        ("a", "Grüße aus Köln".encode("cp1252"), "text"),
        ("a.csv", b"name,age\nann,3\n", "text"),
    ],
)
def test_detect_kind(filename: str, data: bytes, kind: str) -> None:
    assert detect_kind(data, filename) == kind


@pytest.mark.parametrize(
    ("filename", "data", "code"),
    [
        ("a.pdf", b"hello", "extension_mismatch"),
        ("a.docx", make_pdf([["x"]]), "extension_mismatch"),
        ("a.md", make_docx([("p", "x")]), "extension_mismatch"),
        ("a.zip", b"PK\x03\x04" + b"\x00" * 30, "unsupported_file_type"),
        ("a.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "unsupported_file_type"),
        ("a.bin", bytes(range(256)) * 4, "unsupported_file_type"),
    ],
)
def test_detect_kind_refuses(filename: str, data: bytes, code: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        detect_kind(data, filename)
    assert caught.value.code == code


def test_docx_bomb_is_refused_before_reading() -> None:
    with pytest.raises(IngestError) as caught:
        parse(make_docx_bomb(), "docx", max_unpacked_bytes=200 * 1024 * 1024)
    assert caught.value.code == "unpacked_too_large"
    assert "MAI_KB_MAX_UNPACKED_MB" in caught.value.reason


def test_parse_pdf_pages_and_encryption() -> None:
    parsed = parse(make_pdf([["one"], ["two"], ["three"]]), "pdf", max_unpacked_bytes=1)
    assert parsed.page_count == 3
    assert [(b.text, b.page) for b in parsed.blocks] == [("one", 1), ("two", 2), ("three", 3)]
    with pytest.raises(IngestError) as caught:
        parse(make_pdf([["x"]], password="pw"), "pdf", max_unpacked_bytes=1)
    assert caught.value.code == "encrypted_pdf"


def test_chunker_sizes_overlap_and_offsets() -> None:
    counter = RegexTokenCounter()
    blocks = [Block("Intro", section="Intro", heading=True)]
    blocks += [
        Block(" ".join(f"Sentence {p}.{s} has six tokens." for s in range(10)), section="Intro")
        for p in range(6)
    ]
    blocks += [Block("Next", section="Next", heading=True), Block("Short.", section="Next")]
    text, chunks = Chunker(counter, max_tokens=40, overlap=8).split(blocks)
    assert all(c.tokens <= 40 for c in chunks)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert chunks[0].text.startswith("Intro\n\nSentence 0.0")
    # Consecutive chunks of a section overlap by whole sentences.
    assert chunks[1].start < chunks[0].end
    last = chunks[-1]
    assert (last.text, last.section) == ("Next\n\nShort.", "Next")
    assert chunks[-2].section == "Intro"
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_chunker_splits_a_sentence_longer_than_a_chunk() -> None:
    counter = RegexTokenCounter()
    words = " ".join(f"w{i}" for i in range(250))
    _, chunks = Chunker(counter, max_tokens=100, overlap=10).split([Block(words)])
    assert [c.tokens for c in chunks] == [100, 100, 50]
    assert chunks[0].text.split()[0] == "w0"
    assert chunks[2].text.split()[-1] == "w249"


def test_token_counter_uses_the_local_tokenizer() -> None:
    if not MODEL_DIR.is_dir():
        unavailable(f"the shared MiniLM model at {MODEL_DIR}")
    counter = token_counter_for(MODEL_DIR)
    # WordPiece splits the rare word; the regex estimator would count one token.
    assert len(counter.spans("unbelievableness")) > 1
    assert type(token_counter_for(None)) is RegexTokenCounter


def test_sparse_terms_and_vectors() -> None:
    assert terms("The ERR-4471 code") == ["err-4471", "err", "4471", "code"]
    indices, values = document_vector("pump pump valve")
    assert len(indices) == 2
    assert sorted(values)[1] > sorted(values)[0]  # the repeated term weighs more
    assert query_vector("pump pump")[1] == [1.0]
    assert query_vector("the of and") == ([], [])


class _EmbeddingsHandler(BaseHTTPRequestHandler):
    inputs: list[list[str]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/embeddings"
        texts = body["input"]
        type(self).inputs.append(texts)
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.5]}
            for i, t in enumerate(texts)
        ]
        payload = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def embeddings_server() -> Iterator[str]:
    """A local OpenAI-compatible /v1/embeddings server."""
    _EmbeddingsHandler.inputs = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


async def test_openai_embedder_batches_and_truncates(
    embeddings_server: str, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        embedding_provider="openai",
        embedding_model="nomic-embed-text",
        embedding_base_url=embeddings_server,
        embedding_batch_size=2,
        embedding_max_tokens=20,
    )
    embedder = create_embedder(settings)
    assert isinstance(embedder, OpenAIEmbedder)
    long_text = " ".join(["word"] * 5000)
    vectors = await embedder.embed(["short", long_text, "third"])
    assert len(vectors) == 3
    assert [len(batch) for batch in _EmbeddingsHandler.inputs] == [2, 1]
    sent = _EmbeddingsHandler.inputs[0][1]
    assert len(sent.split()) == 20, "the over-long text was cut to MAI_EMBEDDING_MAX_TOKENS"
    assert await embedder.dimension() == 3


async def test_openai_embedder_down_is_unavailable(tmp_path: Path) -> None:
    embedder = OpenAIEmbedder(
        "m",
        base_url="http://127.0.0.1:9/v1",
        api_key=None,
        batch_size=8,
        max_tokens=100,
        counter=RegexTokenCounter(),
        timeout=2,
    )
    with pytest.raises(EmbeddingUnavailable, match=r"127\.0\.0\.1:9"):
        await embedder.embed(["hello"])


async def test_fastembed_with_a_missing_folder_says_what_to_fix(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        embedding_model_path=tmp_path / "nowhere",
    )
    embedder = create_embedder(settings)
    # The model is loaded when the knowledge base opens its index, so every endpoint answers
    # 503 at once instead of queueing documents that can never be embedded.
    with pytest.raises(EmbeddingUnavailable, match="MAI_EMBEDDING_MODEL_PATH"):
        await embedder.dimension()
    with pytest.raises(EmbeddingUnavailable, match="MAI_EMBEDDING_MODEL_PATH"):
        await embedder.embed(["hello"])

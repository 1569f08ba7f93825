"""`mai ingest` as a real subprocess, with the real MiniLM model from ../shared/models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import Settings
from tests.conftest import AppFactory, client_for, unavailable
from tests.kb.support import make_pdf

ROOT = Path(__file__).resolve().parents[2]
# The shared models sit next to the checkout (or next to the folder of worktrees).
MODEL_DIR = next(
    (
        base / "shared" / "models" / "minilm-onnx-int8"
        for base in ROOT.parents
        if (base / "shared" / "models" / "minilm-onnx-int8").is_dir()
    ),
    (ROOT / ".." / "shared" / "models" / "minilm-onnx-int8").resolve(),
)


def _mai(args: list[str], data_dir: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAI_")}
    environ |= {
        "MAI_DATA_DIR": str(data_dir),
        "MAI_BCRYPT_ROUNDS": "4",
        "MAI_EMBEDDING_MODEL_PATH": str(MODEL_DIR),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
async def test_ingest_folder_reports_failures(tmp_path: Path, app_factory: AppFactory) -> None:
    if not MODEL_DIR.is_dir():
        unavailable(f"the shared MiniLM model at {MODEL_DIR}")
    data_dir = tmp_path / "data"
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "guide.md").write_text("# Guide\n\nThe Kestrel valve opens at 40 bar.\n")
    (docs / "sub" / "report.pdf").write_bytes(make_pdf([["Revenue grew by 12 percent."]]))
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    (docs / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    (docs / ".hidden.txt").write_text("skipped: hidden files are not ingested")
    created = _mai(["create-admin", "kb@example.com"], data_dir, stdin="a-good-password\n")
    assert created.returncode == 0, created.stderr

    first = _mai(
        ["ingest", str(docs), str(tmp_path / "missing.txt"), "--user", "kb@example.com",
         "--collection", "manuals", "--tags", "ops,2026"],
        data_dir,
    )  # fmt: skip
    assert first.returncode == 1, first.stdout + first.stderr
    assert "2 document(s) indexed" in first.stdout
    assert "3 failed" in first.stdout
    assert "damaged" in first.stdout  # broken.pdf
    assert "PNG" in first.stdout  # photo.txt
    assert "no such file" in first.stdout  # missing.txt
    assert ".hidden" not in first.stdout

    again = _mai(["ingest", str(docs / "guide.md"), "--user", "kb@example.com"], data_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 already present" in again.stdout

    nobody = _mai(["ingest", str(docs), "--user", "nobody@example.com"], data_dir)
    assert nobody.returncode == 1
    assert "no user with email" in nobody.stderr

    # The server sees what the command indexed.
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=data_dir,
        embedding_model_path=MODEL_DIR,
        bcrypt_rounds=4,
        log_level="WARNING",
        rate_limit_per_minute=0,
    )
    app = await app_factory(settings)
    async with client_for(app) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": "kb@example.com", "password": "a-good-password"}
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        listing = (await client.get("/api/v1/kb/documents", headers=headers)).json()
        assert listing["total"] == 3
        assert {d["status"] for d in listing["items"]} == {"ready", "failed"}
        ready = [d for d in listing["items"] if d["status"] == "ready"]
        assert all(d["collection"] == "manuals" and d["tags"] == ["2026", "ops"] for d in ready)
        response = await client.post(
            "/api/v1/kb/search",
            headers=headers,
            json={"query": "At what pressure does the valve open?"},
        )
        assert response.json()["results"][0]["text"].endswith("The Kestrel valve opens at 40 bar.")


@pytest.mark.slow
def test_kb_reindex_all(tmp_path: Path) -> None:
    if not MODEL_DIR.is_dir():
        unavailable(f"the shared MiniLM model at {MODEL_DIR}")
    data_dir = tmp_path / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nThe Kestrel valve opens at 40 bar.\n")
    (docs / "notes.txt").write_text("The Osprey pump needs new seals every spring.\n")
    created = _mai(["create-admin", "kb@example.com"], data_dir, stdin="a-good-password\n")
    assert created.returncode == 0, created.stderr
    ingested = _mai(["ingest", str(docs), "--user", "kb@example.com"], data_dir)
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    usage = _mai(["kb", "reindex"], data_dir)
    assert usage.returncode == 2
    assert "--all or --user" in usage.stderr
    again = _mai(["kb", "reindex", "--all"], data_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 document(s) reindexed, 0 failed" in again.stdout
    mine = _mai(["kb", "reindex", "--user", "nobody@example.com"], data_dir)
    assert mine.returncode == 1
    assert "no user with email nobody@example.com" in mine.stderr

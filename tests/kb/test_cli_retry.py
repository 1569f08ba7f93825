"""`mai ingest --retry-failed`, in-process, with the real MiniLM model: documents that failed
for a reason since fixed (here a parse time limit since raised) are indexed again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from app.cli import cli
from tests.conftest import unavailable
from tests.kb.support import make_pdf
from tests.kb.test_cli_ingest import MODEL_DIR


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data dir with the shared model, and no MAI_* variables from the machine."""
    if not MODEL_DIR.is_dir():
        unavailable(f"the shared MiniLM model at {MODEL_DIR}")
    for name in list(os.environ):
        if name.startswith("MAI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAI_BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("MAI_EMBEDDING_MODEL_PATH", str(MODEL_DIR))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"


def _mai(args: list[str], stdin: str = "", **env: str) -> Result:
    return CliRunner().invoke(cli, args, input=stdin, env=env)


@pytest.mark.slow
def test_retry_failed_indexes_failed_documents_again(data_dir: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nThe Kestrel valve opens at 40 bar.\n")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    (docs / "report.pdf").write_bytes(make_pdf([["Revenue grew by 12 percent."]]))
    created = _mai(["create-admin", "kb@example.com"], stdin="a-good-password\n")
    assert created.exit_code == 0, created.output

    usage = _mai(["ingest", "--user", "kb@example.com"])
    assert usage.exit_code == 2
    assert "--retry-failed" in usage.output

    # A parse limit too tight for anything: every document fails.
    first = _mai(
        ["ingest", str(docs), "--user", "kb@example.com"], MAI_KB_PARSE_TIMEOUT_SECONDS="0.0001"
    )
    assert first.exit_code == 1, first.output
    assert "0 document(s) indexed" in first.stdout
    assert "3 failed" in first.stdout
    # With the limit back to normal, --retry-failed indexes them from the stored files.
    retried = _mai(["ingest", "--retry-failed", "--user", "kb@example.com"])
    assert retried.exit_code == 1, retried.output  # broken.pdf is damaged: it fails again
    assert "2 document(s) indexed" in retried.stdout
    assert "2 failed document(s) retried successfully" in retried.stdout
    assert "broken.pdf" in retried.stdout
    assert "damaged" in retried.stdout

    # Nothing left to retry but the damaged file; new paths can be given at the same time.
    (docs / "notes.txt").write_text("The Osprey pump needs new seals every spring.\n")
    again = _mai(["ingest", str(docs / "notes.txt"), "--retry-failed", "--user", "kb@example.com"])
    assert "1 document(s) indexed" in again.stdout, again.output
    assert "0 failed document(s) retried successfully" in again.stdout
    assert "1 failed" in again.stdout

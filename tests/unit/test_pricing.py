"""The model price table: file formats, matching, cost, and one-line errors for a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import ConfigError, load_settings
from app.core.pricing import PriceFileError, load_price_table


def test_yaml_and_json_tables_match_exact_names_then_longest_glob(tmp_path: Path) -> None:
    yaml_file = tmp_path / "prices.yaml"
    yaml_file.write_text(
        "models:\n"
        "  GPT-4o: {input: 2.5, output: 10}\n"
        "  'gpt-4o*': {input: 5, output: 15}\n"
        "  'gpt-4o-mini*': {input: 0.15, output: 0.6}\n"
    )
    table = load_price_table(yaml_file)
    assert len(table) == 3
    assert table.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(12.5)
    assert table.cost("gpt-4o-2024-08-06", 2_000_000, 0) == pytest.approx(10.0)
    assert table.cost("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert table.cost("llama-3.2-3b-instruct", 10_000, 10_000) == 0.0
    assert table.cost(None, 10, 10) == 0.0

    json_file = tmp_path / "prices.json"
    json_file.write_text('{"local-*": {"input": 0, "output": 0}, "m": {"input": 1, "output": 2}}')
    table = load_price_table(json_file)
    assert table.cost("m", 500_000, 250_000) == pytest.approx(1.0)
    assert table.price_of("local-qwen") is not None
    assert load_price_table(None).cost("m", 10, 10) == 0.0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.yaml", None, "cannot read"),
        ("broken.yaml", "models: [unclosed", "not valid YAML or JSON"),
        ("broken.json", "{", "not valid YAML or JSON"),
        ("list.yaml", "- gpt-4o\n", "expected a mapping"),
        ("negative.yaml", "m: {input: -1, output: 1}\n", "non-negative"),
        ("text.yaml", "m: {input: cheap, output: 1}\n", "must be a number"),
        ("half.yaml", "m: {input: 1}\n", "needs both input and output"),
        ("extra.yaml", "m: {input: 1, output: 1, cached: 0.5}\n", "unknown key"),
        ("flat.yaml", "m: 3\n", "must map to"),
    ],
)
def test_a_bad_price_file_stops_the_start_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(PriceFileError, match=message):
        load_price_table(path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAI_MODEL_PRICES_FILE", str(path))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    line = str(caught.value)
    assert line.startswith("MAI_MODEL_PRICES_FILE: ")
    assert message in line
    assert "\n" not in line


def test_budget_and_price_file_are_optional(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAI_MODEL_PRICES_FILE", "")
    monkeypatch.setenv("MAI_DAILY_TOKEN_BUDGET", "")
    settings = load_settings()
    assert settings.model_prices_file is None
    assert settings.daily_token_budget is None
    monkeypatch.setenv("MAI_DAILY_TOKEN_BUDGET", "-5")
    with pytest.raises(ConfigError, match=r"^MAI_DAILY_TOKEN_BUDGET:"):
        load_settings()

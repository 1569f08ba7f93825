"""Model prices: USD per million input and output tokens, read from MAI_MODEL_PRICES_FILE.

The file is YAML or JSON, a mapping of model name to prices, optionally under a `models:` key:

    models:
      gpt-4o-mini: {input: 0.15, output: 0.60}
      "gpt-4o*":   {input: 2.50, output: 10.00}   # a glob: matches dated snapshots

Names match case-insensitively; an exact name wins over a glob, a longer glob over a shorter one.
Models not listed (local models, typically) cost 0, but their tokens still count.
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_PER_MILLION = 1_000_000


class PriceFileError(Exception):
    """The price file cannot be read or is not a valid price table (one readable line)."""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens for one model (or glob of models)."""

    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The USD cost of a call with these token counts."""
        return (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / _PER_MILLION


@dataclass(frozen=True)
class PriceTable:
    """Prices by model name; unknown models are free."""

    exact: dict[str, ModelPrice] = field(default_factory=dict)
    patterns: tuple[tuple[str, ModelPrice], ...] = ()

    def price_of(self, model: str | None) -> ModelPrice | None:
        """The price of a model, or None when it is not listed (it then costs 0)."""
        if not model:
            return None
        name = model.lower()
        if name in self.exact:
            return self.exact[name]
        for pattern, price in self.patterns:
            if fnmatch.fnmatchcase(name, pattern):
                return price
        return None

    def cost(self, model: str | None, input_tokens: int, output_tokens: int) -> float:
        """The USD cost of tokens on a model (0 for unknown and local models)."""
        price = self.price_of(model)
        if price is None:
            return 0.0
        return round(price.cost(input_tokens, output_tokens), 8)

    def __len__(self) -> int:
        return len(self.exact) + len(self.patterns)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PriceFileError(f"{where} must be a number of USD per million tokens")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise PriceFileError(f"{where} must be a non-negative number of USD per million tokens")
    return number


def _entry(model: str, value: Any) -> ModelPrice:
    if not isinstance(value, dict):
        raise PriceFileError(
            f"model {model!r} must map to {{input: USD, output: USD}} per million tokens"
        )
    unknown = set(value) - {"input", "output"}
    if unknown:
        raise PriceFileError(
            f"model {model!r} has unknown key(s) {', '.join(sorted(map(str, unknown)))}: "
            "use input and output (USD per million tokens)"
        )
    if "input" not in value or "output" not in value:
        raise PriceFileError(f"model {model!r} needs both input and output prices")
    return ModelPrice(
        _number(value["input"], f"model {model!r} input"),
        _number(value["output"], f"model {model!r} output"),
    )


def parse_price_table(data: Any) -> PriceTable:
    """Build a price table from parsed YAML/JSON, raising PriceFileError on a bad shape."""
    if isinstance(data, dict) and set(data) == {"models"}:
        data = data["models"]
    if data is None:
        return PriceTable()
    if not isinstance(data, dict):
        raise PriceFileError("expected a mapping of model name to {input, output} prices")
    exact: dict[str, ModelPrice] = {}
    patterns: list[tuple[str, ModelPrice]] = []
    for raw_name, value in data.items():
        if not isinstance(raw_name, str) or not raw_name.strip():
            raise PriceFileError(f"model names must be non-empty strings, got {raw_name!r}")
        name = raw_name.strip().lower()
        price = _entry(raw_name, value)
        if any(char in name for char in "*?["):
            patterns.append((name, price))
        else:
            exact[name] = price
    patterns.sort(key=lambda item: len(item[0]), reverse=True)
    return PriceTable(exact, tuple(patterns))


def load_price_table(path: Path | None) -> PriceTable:
    """Read the price file (YAML or JSON); no file means every model costs 0."""
    if path is None:
        return PriceTable()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PriceFileError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PriceFileError(f"{path} is not valid YAML or JSON: {first}") from None
    try:
        return parse_price_table(data)
    except PriceFileError as error:
        raise PriceFileError(f"{path}: {error}") from None

"""The moderation graph's tools: PII masking with typed placeholders, and its reversal.

`mask` replaces each finding with a placeholder naming its type ([EMAIL_1], [CARD_1]...; the
same value gets the same placeholder) and returns the mapping back; `unmask` restores the
original text from the masked text and that mapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from graphs.moderation.state import Finding


def mask(text: str, findings: Sequence[Finding]) -> tuple[str, dict[str, str]]:
    """The text with every finding masked, and placeholder -> original value."""
    mapping: dict[str, str] = {}
    by_value: dict[tuple[str, str], str] = {}
    counts: dict[str, int] = {}
    pieces: list[str] = []
    cursor = 0
    for finding in sorted(findings, key=lambda f: (f["start"], -f["end"])):
        if finding["start"] < cursor:
            continue  # overlaps a span already masked
        key = (finding["type"], finding["text"])
        placeholder = by_value.get(key)
        if placeholder is None:
            kind = finding["type"].upper()
            counts[kind] = counts.get(kind, 0) + 1
            placeholder = f"[{kind}_{counts[kind]}]"
            by_value[key] = placeholder
            mapping[placeholder] = finding["text"]
        pieces.append(text[cursor : finding["start"]])
        pieces.append(placeholder)
        cursor = finding["end"]
    pieces.append(text[cursor:])
    return "".join(pieces), mapping


def unmask(masked: str, mapping: Mapping[str, str]) -> str:
    """The original text back from a masked text and its mapping."""
    restored = masked
    # Longest placeholders first, so [EMAIL_1] never eats the start of [EMAIL_10].
    for placeholder in sorted(mapping, key=len, reverse=True):
        restored = restored.replace(placeholder, mapping[placeholder])
    return restored

"""A cheap lexical check that each citation is supported by the passage it names.

For every sentence carrying [n] markers, the sentence's content words (three letters or more,
not a stop word, the markers removed) are compared with the words of each passage it cites.
The citation counts as supported when the passage contains at least SUPPORT_SHARE of them and
at least two (one for a one-word sentence). A model that cites [2] for a claim passage 2 never
makes shares few words with it, so this catches misattributed and invented citations; it cannot
tell a faithful paraphrase from a contradiction using the same words, and does not try to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from graphs.assistant.state import Citation
from graphs.knowledge import Passage

SUPPORT_SHARE = 0.3
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_WORD = re.compile(r"[^\W_]{3,}", re.UNICODE)
_STOP_TEXT = (
    "the and for are but not you your with this that these those from have has had was were "
    "will would can could should may might must its it's into onto than then there their "
    "they them what when where which who whom why how all any each other some such only own "
    "same too very just also about above after again against below between both during "
    "before being does did doing because until while over under more most off out per via "
    "yes one our ours his her hers him she he"
)
STOP_WORDS = frozenset(_STOP_TEXT.split())


def content_words(text: str) -> set[str]:
    """The lower-cased words that carry meaning (no stop words, no short words, no markers)."""
    return {w for w in _WORD.findall(_MARKER.sub(" ", text).lower()) if w not in STOP_WORDS}


def supports(sentence: str, passage_text: str) -> bool:
    """Whether a passage shares enough of a sentence's content words to back it."""
    words = content_words(sentence)
    if not words:
        return False
    shared = len(words & content_words(passage_text))
    return shared >= min(2, len(words)) and shared / len(words) >= SUPPORT_SHARE


def check_citations(
    answer: str, citations: Sequence[Citation], passages: Sequence[Passage]
) -> tuple[list[Citation], float | None]:
    """Each citation marked `supported` (some sentence citing it is backed by its passage),
    and the share of supported citations (None when the answer cites nothing)."""
    backed: set[int] = set()
    for sentence in _SENTENCE_END.split(answer):
        for match in _MARKER.finditer(sentence):
            for piece in match.group(1).split(","):
                number = int(piece)
                if 1 <= number <= len(passages) and supports(
                    sentence, passages[number - 1]["text"]
                ):
                    backed.add(number)
    checked: list[Citation] = [
        {**citation, "supported": citation["number"] in backed} for citation in citations
    ]
    if not checked:
        return checked, None
    return checked, sum(1 for c in checked if c["supported"]) / len(checked)

"""Keyword vectors for BM25-style search: hashed terms with saturated term frequencies.

Qdrant multiplies these by IDF (the collection's sparse vector uses `modifier=IDF`), so no model
is needed: the same tokenizer runs on documents and queries.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

_TERM = re.compile(r"[^\W_]+(?:[-_./:][^\W_]+)*", re.UNICODE)
_STOPWORD_LIST = (
    "a an and are as at be but by for from has have how i if in into is it its of on or that the "
    "their there these this to was were what when where which who why will with you your"
)
_STOPWORDS = frozenset(_STOPWORD_LIST.split())
K1 = 1.2
B = 0.75
AVERAGE_TERMS = 250.0
# BM25 normalises a chunk's length by the collection's average. Chunks are cut to a target size,
# so the average follows from it: measured on documentation pages, chunks average about half the
# chunk size in model tokens, at about 0.57 index terms per token.
TERMS_PER_CHUNK_TOKEN = 0.3


def average_terms(chunk_tokens: int) -> float:
    """The average chunk length in index terms that BM25 normalises by, for a chunk size."""
    return max(8.0, chunk_tokens * TERMS_PER_CHUNK_TOKEN)


def terms(text: str) -> list[str]:
    """Lower-cased terms; compound tokens (ERR-4471, v2.1) count whole and by their parts."""
    found: list[str] = []
    for match in _TERM.finditer(text.lower()):
        token = match.group()
        parts = re.split(r"[-_./:]", token)
        if len(parts) > 1:
            found.append(token)
            found.extend(part for part in parts if part and part not in _STOPWORDS)
        elif token not in _STOPWORDS:
            found.append(token)
    return found


def term_index(term: str) -> int:
    """A stable 32-bit index for a term (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "big")


def _merge(weights: dict[int, float]) -> tuple[list[int], list[float]]:
    indices = sorted(weights)
    return indices, [weights[index] for index in indices]


def document_vector(text: str, average: float = AVERAGE_TERMS) -> tuple[list[int], list[float]]:
    """Indices and BM25 term-frequency weights of a chunk, its length normalised by `average`.

    A chunk shorter than the average weighs its terms up and a longer one down, as in BM25, so
    neither short nor long chunks are favoured when the average is the collection's.
    """
    counts = Counter(terms(text))
    length = sum(counts.values()) or 1
    norm = K1 * (1 - B + B * length / average)
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        index = term_index(term)
        weights[index] = weights.get(index, 0.0) + tf * (K1 + 1) / (tf + norm)
    return _merge(weights)


def query_vector(text: str) -> tuple[list[int], list[float]]:
    """Indices of the query's distinct terms, each weighing 1."""
    weights = {term_index(term): 1.0 for term in terms(text)}
    return _merge(weights)

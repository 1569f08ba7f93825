"""The MAI sentiment analyzer: text (or a batch of texts) -> a validated sentiment result.

`builder` and `graph` (compiled without a checkpointer) as in every MAI graph package.
"""

from graphs.sentiment.context import Context
from graphs.sentiment.graph import builder, graph
from graphs.sentiment.nodes.analyze import SentimentInvalid
from graphs.sentiment.state import Analysis, Aspect, InputState, OutputState, SentimentResult
from graphs.sentiment.tools import GlossaryError, glossary_tool, load_glossary, lookup_terms

__all__ = [
    "Analysis",
    "Aspect",
    "Context",
    "GlossaryError",
    "InputState",
    "OutputState",
    "SentimentInvalid",
    "SentimentResult",
    "builder",
    "glossary_tool",
    "graph",
    "load_glossary",
    "lookup_terms",
]

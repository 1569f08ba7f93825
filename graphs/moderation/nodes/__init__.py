"""The moderation graph's nodes, one module per stage."""

from graphs.moderation.nodes.pii import pii
from graphs.moderation.nodes.prepare import prepare
from graphs.moderation.nodes.sanitize import sanitize
from graphs.moderation.nodes.toxicity import toxicity
from graphs.moderation.nodes.verdict import verdict

__all__ = ["pii", "prepare", "sanitize", "toxicity", "verdict"]

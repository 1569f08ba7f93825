"""The MAI moderation pipeline: toxicity and PII detection in parallel, then sanitization.

`builder` and `graph` (compiled without a checkpointer) as in every MAI graph package.
"""

from graphs.moderation.context import Context
from graphs.moderation.detectors import detect, iban_valid, luhn_valid
from graphs.moderation.graph import builder, graph
from graphs.moderation.nodes.prepare import ModerationInputError
from graphs.moderation.nodes.stage import StageFailed
from graphs.moderation.state import Finding, InputState, OutputState, StageReport
from graphs.moderation.tools import mask, unmask

__all__ = [
    "Context",
    "Finding",
    "InputState",
    "ModerationInputError",
    "OutputState",
    "StageFailed",
    "StageReport",
    "builder",
    "detect",
    "graph",
    "iban_valid",
    "luhn_valid",
    "mask",
    "unmask",
]

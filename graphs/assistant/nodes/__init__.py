"""The assistant graph's nodes, one module each."""

from graphs.assistant.nodes.call_model import call_model
from graphs.assistant.nodes.load_context import load_context
from graphs.assistant.nodes.memory import recall_memories, update_memories
from graphs.assistant.nodes.retrieve import retrieve
from graphs.assistant.nodes.route import route
from graphs.assistant.nodes.synthesize import synthesize
from graphs.assistant.nodes.tools import tools

__all__ = [
    "call_model",
    "load_context",
    "recall_memories",
    "retrieve",
    "route",
    "synthesize",
    "tools",
    "update_memories",
]

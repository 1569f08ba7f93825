"""The sentiment graph's nodes."""

from graphs.sentiment.nodes.analyze import analyze, collect, prepare

__all__ = ["analyze", "collect", "prepare"]

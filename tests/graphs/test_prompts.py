"""Prompt templates: versions, sandboxed rendering, and variables checked at load time."""

from __future__ import annotations

from pathlib import Path

import pytest

import prompts
from prompts import PromptError


def write(directory: Path, name: str, text: str) -> None:
    (directory / f"{name}.jinja").write_text(text)


def test_packaged_templates_load_with_versions() -> None:
    assert prompts.available() == [
        "knowledge",
        "memory",
        "moderation_pii",
        "moderation_toxicity",
        "plan_step_knowledge",
        "plan_synthesis",
        "planning",
        "routing",
        "sentiment",
        "summary",
        "system",
    ]
    for name in prompts.available():
        prompt = prompts.load(name)
        assert prompt.version
        assert prompt.description
    assert prompts.load("summary").variables == {"summary", "transcript"}


def test_render_with_exactly_the_declared_variables() -> None:
    text = prompts.render("summary", summary="Earlier: a.", transcript="User: hello")
    assert "Earlier: a." in text
    assert "User: hello" in text
    with pytest.raises(PromptError, match="missing transcript"):
        prompts.render("summary", summary="")
    with pytest.raises(PromptError, match="unexpected extra"):
        prompts.render("summary", summary="", transcript="", extra=1)


def test_a_variable_used_but_not_declared_fails_at_load_time(tmp_path: Path) -> None:
    write(
        tmp_path, "greet", "---\nversion: 2\nvariables: [name]\n---\nHello {{ name }} {{ title }}"
    )
    with pytest.raises(PromptError, match=r"uses title but declares only name"):
        prompts.load("greet", directory=tmp_path)


def test_a_declared_variable_never_used_fails_at_load_time(tmp_path: Path) -> None:
    write(tmp_path, "greet", "---\nversion: 1\nvariables: [name, title]\n---\nHello {{ name }}")
    with pytest.raises(PromptError, match="declared variables never used: title"):
        prompts.load("greet", directory=tmp_path)


def test_front_matter_is_required(tmp_path: Path) -> None:
    write(tmp_path, "bare", "Hello {{ name }}")
    with pytest.raises(PromptError, match="front-matter"):
        prompts.load("bare", directory=tmp_path)
    write(tmp_path, "noversion", "---\nvariables: []\n---\nHi")
    with pytest.raises(PromptError, match="needs a 'version'"):
        prompts.load("noversion", directory=tmp_path)
    write(tmp_path, "broken", "---\nversion: 1\nvariables: []\n---\n{% if %}")
    with pytest.raises(PromptError, match="template error"):
        prompts.load("broken", directory=tmp_path)
    with pytest.raises(PromptError, match="no prompt named 'absent'"):
        prompts.load("absent", directory=tmp_path)


def test_loop_variables_are_not_inputs_and_rendering_is_sandboxed(tmp_path: Path) -> None:
    write(
        tmp_path,
        "list",
        "---\nversion: 1\nvariables: [items]\n---\n"
        "{% for item in items %}- {{ item.name }}\n{% endfor %}",
    )
    prompt = prompts.load("list", directory=tmp_path)
    assert prompt.render(items=[{"name": "a"}, {"name": "b"}]) == "- a\n- b"
    # A missing attribute is an error, never a blank.
    with pytest.raises(PromptError, match="has no attribute 'name'"):
        prompt.render(items=[{}])
    write(
        tmp_path,
        "escape",
        "---\nversion: 1\nvariables: [value]\n---\n{{ value.__class__.__mro__ }}",
    )
    with pytest.raises(PromptError):
        prompts.load("escape", directory=tmp_path).render(value="x")

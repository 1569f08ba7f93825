"""Prompt templates kept as files: versioned, rendered in a sandbox, checked when loaded.

Each template in `prompts/templates/<name>.jinja` starts with a front-matter block:

    ---
    version: 1
    description: what the prompt is for
    variables: [question, history]
    ---
    template text using {{ question }} ...

`load(name)` parses the file, compiles it in a `SandboxedEnvironment` with `StrictUndefined`, and
checks that the variables the template uses are exactly the declared ones: a template that uses an
undeclared variable (or declares one it never uses) fails when it is loaded, not when a blank
shows up in a prompt. `Prompt.render(**values)` then insists on exactly the declared variables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["TEMPLATE_DIR", "Prompt", "PromptError", "available", "load", "parse", "render"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
SUFFIX = ".jinja"
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<meta>.*?)\n---[ \t]*\n(?P<body>.*)\Z", re.DOTALL)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class PromptError(Exception):
    """A template that cannot be loaded or rendered: the message names the file and the fault."""


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,  # prompts are plain text for a model, never HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


_ENV = _environment()


@dataclass(frozen=True)
class Prompt:
    """A loaded template: its name, version, declared variables and compiled body."""

    name: str
    version: str
    description: str
    variables: frozenset[str]
    source: str
    template: Template = field(repr=False, compare=False)

    def render(self, **values: Any) -> str:
        """Render with exactly the declared variables; anything missing or extra is an error."""
        missing = sorted(self.variables - values.keys())
        unexpected = sorted(values.keys() - self.variables)
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if unexpected:
                parts.append(f"unexpected {', '.join(unexpected)}")
            raise PromptError(f"prompt {self.name!r} (v{self.version}): {'; '.join(parts)}")
        try:
            return self.template.render(**values).strip()
        except TemplateError as error:
            raise PromptError(f"prompt {self.name!r} (v{self.version}): {error}") from error


def parse(name: str, text: str, *, source: str = "<string>") -> Prompt:
    """Parse one template's text (front matter and body) and check its variables."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise PromptError(
            f"{source}: a prompt starts with a '---' front-matter block "
            "(version, description, variables)"
        )
    try:
        header = yaml.safe_load(match["meta"]) or {}
    except yaml.YAMLError as error:
        raise PromptError(f"{source}: front matter is not valid YAML: {error}") from error
    if not isinstance(header, Mapping):
        raise PromptError(f"{source}: front matter must be a mapping")
    version = header.get("version")
    if version is None or str(version).strip() == "":
        raise PromptError(f"{source}: front matter needs a 'version'")
    declared = header.get("variables", [])
    if not isinstance(declared, list) or not all(
        isinstance(v, str) and _NAME.match(v) for v in declared
    ):
        raise PromptError(f"{source}: 'variables' must be a list of lower_snake_case names")
    body = match["body"]
    try:
        used = meta.find_undeclared_variables(_ENV.parse(body))
        template = _ENV.from_string(body)
    except TemplateError as error:
        raise PromptError(f"{source}: template error: {error}") from error
    undeclared = sorted(used - set(declared))
    unused = sorted(set(declared) - used)
    if undeclared:
        raise PromptError(
            f"{source}: the template uses {', '.join(undeclared)} but declares only "
            f"{', '.join(sorted(declared)) or 'no variables'}"
        )
    if unused:
        raise PromptError(f"{source}: declared variables never used: {', '.join(unused)}")
    return Prompt(
        name=name,
        version=str(version),
        description=str(header.get("description", "")),
        variables=frozenset(declared),
        source=source,
        template=template,
    )


def _read(name: str, directory: Path) -> Prompt:
    if not _NAME.match(name):
        raise PromptError(f"invalid prompt name {name!r}")
    path = directory / f"{name}{SUFFIX}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptError(f"no prompt named {name!r} in {directory}") from None
    return parse(name, text, source=str(path))


@lru_cache(maxsize=64)
def _load_packaged(name: str) -> Prompt:
    return _read(name, TEMPLATE_DIR)


def load(name: str, *, directory: Path | None = None) -> Prompt:
    """Load (and check) the template `name`; packaged templates are cached after the first load."""
    if directory is None:
        return _load_packaged(name)
    return _read(name, directory)


def render(name: str, **values: Any) -> str:
    """Render the packaged template `name` with exactly its declared variables."""
    return load(name).render(**values)


def available() -> list[str]:
    """The names of the packaged templates."""
    return sorted(path.stem for path in TEMPLATE_DIR.glob(f"*{SUFFIX}"))

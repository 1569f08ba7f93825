# The README's two commands: `uv run mai serve` starts the service, `make test` runs every check.
.PHONY: install run test lint typecheck imports pytest format bench

install:
	uv sync --locked

run: install
	uv run --frozen mai serve

lint:
	uv run --frozen ruff format --check .
	uv run --frozen ruff check .

typecheck:
	uv run --frozen mypy app graphs prompts

imports:
	uv run --frozen lint-imports

pytest:
	uv run --frozen pytest

test: install lint typecheck imports pytest

format:
	uv run --frozen ruff format .
	uv run --frozen ruff check --fix .

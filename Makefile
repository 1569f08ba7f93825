# The README's two commands: `uv run mai serve` starts the service, `make test` runs every check.
.PHONY: install run test lint typecheck imports pytest format bench

# Bytecode compiled once at install, the libraries' and MAI's own: where PYTHONDONTWRITEBYTECODE
# is set, every `mai` command would otherwise recompile ~10k modules (about 10 s of CPU).
install:
	uv sync --locked --compile-bytecode
	uv run --frozen python -m compileall -q app graphs prompts

run: install
	uv run --frozen mai serve

lint:
	uv run --frozen ruff format --check .
	uv run --frozen ruff check .

typecheck:
	uv run --frozen mypy app graphs prompts
	uv run --frozen mypy --explicit-package-bases bench

imports:
	uv run --frozen lint-imports

# Locally the tests marked `slow` (real subprocesses, fuzzing, the retrieval corpus) are left
# to CI, which runs everything: `make test PYTEST_MARKERS="not live"`.
PYTEST_MARKERS ?= not live and not slow
# Two processes (pytest-xdist), a test file each at a time: most tests wait on I/O (servers,
# databases), so two share the machine's cores well. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2

pytest:
	uv run --frozen pytest -n $(PYTEST_WORKERS) --dist loadfile -m "$(PYTEST_MARKERS)" --durations=30

test: install lint typecheck imports pytest

format:
	uv run --frozen ruff format .
	uv run --frozen ruff check --fix .

"""Deployment files: docker-compose.yml against the Compose Specification schema plus semantic
checks, the Dockerfile's promises, and .env.example covering every variable compose reads."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest
import yaml

from tests.conftest import unavailable
from tests.observability.tooling import ROOT

COMPOSE = ROOT / "docker-compose.yml"
# ${VAR}, ${VAR:-default}, ${VAR:?error}, $VAR; `$$` is compose's escape for a literal `$`.
_VARIABLE = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _compose_schema() -> dict[str, Any]:
    """The Compose Specification JSON schema, as vendored by check-jsonschema."""
    try:
        schemas = resources.files("check_jsonschema.builtin_schemas.vendor")
    except ModuleNotFoundError:
        unavailable("check-jsonschema (uv sync)")
        raise
    schema = json.loads(schemas.joinpath("compose-spec.json").read_text())
    assert schema["title"] == "Compose Specification"
    return schema


def test_compose_file_matches_the_compose_specification() -> None:
    import jsonschema

    schema = _compose_schema()
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(_compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


def test_compose_schema_check_catches_mistakes() -> None:
    import jsonschema

    schema = _compose_schema()
    broken = _compose()
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["redis"]["restart_policy"] = "always"
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(broken))
    assert len(errors) >= 2


def test_required_services_with_health_checks() -> None:
    services = _compose()["services"]
    assert {"api", "migrate", "postgres", "redis", "qdrant", "prometheus", "grafana"} <= set(
        services
    )
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    for name in ("api", "postgres", "redis", "qdrant", "prometheus", "grafana"):
        assert "healthcheck" in services[name], name
    # Langfuse (and only Langfuse) sits behind its profile.
    langfuse = {name for name, s in services.items() if "langfuse" in s.get("profiles", [])}
    assert {"langfuse-web", "langfuse-worker"} <= langfuse
    assert all(name.startswith("langfuse") for name in langfuse)
    assert all(not s.get("profiles") for n, s in services.items() if n not in langfuse)


def test_api_waits_for_migration_and_healthy_dependencies() -> None:
    services = _compose()["services"]
    depends = services["api"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    for name in ("postgres", "redis", "qdrant"):
        assert depends[name]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_dependency_and_named_volume_exists() -> None:
    compose = _compose()
    services = compose["services"]
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for target in depends if isinstance(depends, list) else depends.keys():
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name
            # A service outside the langfuse profile must not wait for one inside it.
            if not service.get("profiles"):
                assert not services[target].get("profiles"), f"{name} -> {target}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source and not source.startswith((".", "/", "~")):
                used.add(source)
    assert used <= declared, f"undeclared volumes: {used - declared}"
    assert declared <= used, f"unused volumes: {declared - used}"


def test_prometheus_keeps_30_days_and_grafana_password_comes_from_env() -> None:
    services = _compose()["services"]
    command = " ".join(services["prometheus"]["entrypoint"])
    assert "--storage.tsdb.retention.time=30d" in command
    assert "--config.file=/etc/prometheus/prometheus.yml" in command
    password = services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert password.startswith("${GRAFANA_ADMIN_PASSWORD")


def test_env_example_covers_every_variable_compose_reads() -> None:
    text = COMPOSE.read_text()
    used = {a or b for a, b in _VARIABLE.findall(text)}
    assert {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "MAI_JWT_SECRET"} <= used
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    assert used <= documented, f"missing from .env.example: {sorted(used - documented)}"


def test_dockerfile_is_multi_stage_slim_non_root_with_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile, flags=re.MULTILINE)
    assert len(stages) >= 2
    assert all(image.startswith("python:3.11-slim") for image, _ in stages)
    assert "uv sync --frozen --no-dev" in dockerfile
    user = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert user
    assert user[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*/ready", dockerfile, flags=re.MULTILINE)
    entrypoint = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert entrypoint.index("mai migrate") < entrypoint.index("exec mai serve --host 0.0.0.0")
    # Everything the image copies exists, and the build context does not exclude it.
    ignored = (ROOT / ".dockerignore").read_text().split()
    for source in re.findall(
        r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", dockerfile, flags=re.MULTILINE
    ):
        for item in source.split():
            if "*" in item:
                continue
            assert (ROOT / item).exists(), item
            assert item not in ignored, item


@pytest.mark.parametrize("script", ["docker/entrypoint.sh"])
def test_entrypoint_is_valid_shell(script: str) -> None:
    import shutil
    import subprocess

    shell = shutil.which("sh")
    assert shell is not None
    result = subprocess.run([shell, "-n", str(ROOT / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

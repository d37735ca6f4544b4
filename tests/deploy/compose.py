"""Readers of docker-compose.yml and scripts/kafka-local.sh shared by the deploy tests.

The compose file is only parsed (no Docker engine here); the deploy tests compare what it
declares (image tags, topics and their partitions) with the Docker-free broker script, the
service's settings and the Kubernetes overlays.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "COMPOSE_FILE",
    "KAFKA_LOCAL_SCRIPT",
    "ROOT",
    "created_topics",
    "kafka_local_version",
    "load_compose",
]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
KAFKA_LOCAL_SCRIPT = ROOT / "scripts" / "kafka-local.sh"

_SPEC_LOOP = re.compile(r"for\s+\w+\s+in\s+([^;\n]+);\s*do")
_TOPIC_SPEC = re.compile(r"^([A-Za-z0-9._-]+):([0-9]+)$")


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{COMPOSE_FILE} is not a YAML mapping"
    return data


def kafka_local_version() -> str:
    """KAFKA_VERSION="x.y.z" as pinned in scripts/kafka-local.sh."""
    text = KAFKA_LOCAL_SCRIPT.read_text(encoding="utf-8")
    found: list[str] = re.findall(r'^KAFKA_VERSION="([^"]+)"', text, flags=re.MULTILINE)
    assert len(found) == 1, f'expected one KAFKA_VERSION="..." line in {KAFKA_LOCAL_SCRIPT}'
    return found[0]


def created_topics(compose: dict[str, Any]) -> dict[str, int]:
    """Topic -> partitions, from the kafka-init command's `for spec in name:partitions ...; do`."""
    init = compose["services"]["kafka-init"]
    command = init["command"]
    script = "\n".join(command) if isinstance(command, list) else str(command)
    assert "kafka-topics.sh" in script, "kafka-init no longer runs kafka-topics.sh"
    assert "--create" in script, "kafka-init no longer creates topics"
    loops = _SPEC_LOOP.findall(script)
    assert len(loops) == 1, "expected one `for spec in name:partitions ...; do` loop in kafka-init"
    topics: dict[str, int] = {}
    for spec in loops[0].split():
        match = _TOPIC_SPEC.match(spec)
        assert match, f"kafka-init topic spec {spec!r} is not name:partitions"
        topics[match.group(1)] = int(match.group(2))
    return topics

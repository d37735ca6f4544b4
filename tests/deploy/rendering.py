"""The Kustomize overlays under deploy/ as rendered objects, shared by the manifest tests.

`Rendered` is one overlay's `kustomize build` output; the helpers read what the container gets:
its environment (Secret values replaced by placeholders) and which Secret a mounted file is.
The settings that are credentials or credential files are derived from the service's own
settings models, so a new secret setting is covered without touching the tests.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from service.settings import ENV_PREFIX, Settings, env_name
from tests.deploy.compose import ROOT

__all__ = [
    "APP",
    "DEPLOY",
    "FILE_SETTINGS",
    "HISTORY_OVERLAYS",
    "KUSTOMIZE_VERSION",
    "OVERLAYS",
    "SECRET_SETTINGS",
    "Rendered",
    "build_kustomize",
    "pod_environment",
    "render",
    "secret_file",
    "use_environment",
]

DEPLOY = ROOT / "deploy"
KUSTOMIZE_SCRIPT = ROOT / "scripts" / "kustomize.sh"
KUSTOMIZE_VERSION = "v5.8.2"
OVERLAYS = ("dev", "prod", "prod-hpa")
HISTORY_OVERLAYS = frozenset({"prod", "prod-hpa"})
"""Overlays with the claim history on (components/claim-history); dev has no database."""
APP = "claims-validator"


@dataclass(frozen=True)
class Rendered:
    overlay: str
    text: str
    objects: tuple[dict[str, Any], ...]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.overlay}: expected one {kind} {name or ''}, got {found}"
        return found[0]

    @property
    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.one("Deployment", APP)["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod["containers"]
        assert [c["name"] for c in containers] == [APP]
        container: dict[str, Any] = containers[0]
        return container

    @property
    def settings_data(self) -> dict[str, str]:
        """The data of the ConfigMap the container reads through envFrom."""
        refs = [s["configMapRef"]["name"] for s in self.container.get("envFrom", [])]
        assert len(refs) == 1, f"{self.overlay}: expected one envFrom configMapRef, got {refs}"
        data: dict[str, str] = self.one("ConfigMap", refs[0])["data"]
        return data

    def secret_env(self) -> dict[str, tuple[str, str]]:
        """Variables set from a Secret: name -> (Secret name, key)."""
        return {
            v["name"]: (ref["name"], ref["key"])
            for v in self.container.get("env", [])
            if (ref := v.get("valueFrom", {}).get("secretKeyRef"))
        }


def build_kustomize() -> Path:
    """The pinned kustomize binary, built on first use by scripts/kustomize.sh; fails the
    test (never skips) and says why when it cannot be built."""
    try:
        proc = subprocess.run(
            ["bash", str(KUSTOMIZE_SCRIPT), "install"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"scripts/kustomize.sh install could not run: {exc}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            f"could not build kustomize {KUSTOMIZE_VERSION} with scripts/kustomize.sh "
            f"(it needs Go on PATH and the Go module proxy); exit {proc.returncode}:\n"
            f"{proc.stderr}",
            pytrace=False,
        )
    return Path(proc.stdout.strip().splitlines()[-1])


def render(kustomize: Path, overlay: str) -> Rendered:
    proc = subprocess.run(
        [str(kustomize), "build", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"kustomize build deploy/overlays/{overlay} failed:\n{proc.stderr}")
    objects = tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)
    return Rendered(overlay, proc.stdout, objects)


def _group_settings(annotation_types: tuple[type, ...]) -> set[str]:
    """CLAIMS_<GROUP>__* names of the settings groups' fields whose type includes one of these."""
    names = set()
    for group, group_info in Settings.model_fields.items():
        model = group_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        for field, info in model.model_fields.items():
            args = getattr(info.annotation, "__args__", (info.annotation,))
            if any(arg in annotation_types for arg in args):
                names.add(env_name((group, field)))
    return names


SECRET_SETTINGS = _group_settings((SecretStr,)) | {env_name(("kafka", "sasl_username"))}
"""Settings that are credentials (Kafka password, history DSN and HMAC key...): only ever
from a Secret (secretKeyRef)."""
FILE_SETTINGS = _group_settings((Path,))
"""Settings naming a file (CA, client cert, key): mounted from a Secret volume."""


def secret_file(r: Rendered, path: str) -> tuple[str, str]:
    """(Secret name, key) of the secret volume file that `path` names in the container."""
    parent, key = str(PurePosixPath(path).parent), PurePosixPath(path).name
    mounts = [m for m in r.container.get("volumeMounts", []) if m["mountPath"] == parent]
    assert len(mounts) == 1, f"{r.overlay}: {path} is not in a mounted volume"
    assert mounts[0].get("readOnly") is True, f"{r.overlay}: {parent} must be mounted readOnly"
    volume = next(v for v in r.pod["volumes"] if v["name"] == mounts[0]["name"])
    assert "secret" in volume, f"{r.overlay}: {parent} is not a Secret volume"
    items = volume["secret"].get("items")
    assert items is None or key in [i["path"] for i in items], f"{r.overlay}: {path} not projected"
    return volume["secret"]["secretName"], key


def pod_environment(r: Rendered) -> dict[str, str]:
    """CLAIMS_* variables the container starts with; secret values become placeholders (long
    enough for the settings that demand a minimum length, such as the history HMAC key)."""
    env = dict(r.settings_data)
    for var in r.container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var["valueFrom"]:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = f"placeholder-from-secret-{ref['name']}-{ref['key']}".ljust(64, "x")
        elif "fieldRef" in var["valueFrom"]:
            env[var["name"]] = f"{APP}-pod-0"
        else:
            pytest.fail(f"{r.overlay}: unexpected env source {var}")
    return env


def use_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Make `env` the process's only CLAIMS_* variables (the test harness's own excepted)."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX) and not name.upper().startswith("CLAIMS_TEST_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

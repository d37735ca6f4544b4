"""Fixtures of the manifest tests: the pinned kustomize and every overlay rendered once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.rendering import OVERLAYS, Rendered, build_kustomize, render


@pytest.fixture(scope="session")
def kustomize() -> Path:
    return build_kustomize()


@pytest.fixture(scope="session")
def rendered(kustomize: Path) -> dict[str, Rendered]:
    return {overlay: render(kustomize, overlay) for overlay in OVERLAYS}

"""Shared test fixtures: paths, the shared real-model folder (skipped when absent), one TF per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "tf"
SHARED = Path(os.environ.get("GRAPHKIT_SHARED_MODELS", ROOT.parent / "shared" / "models"))
MANIFEST = json.loads((FIXTURES / "MANIFEST.json").read_text())


def shared(rel: str) -> Path:
    """A model from ../shared/models, or skip the test with the reason."""
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"real third-party models not available ({path} is absent)")
    return path


def fixture_checkpoint(name: str) -> Path:
    return FIXTURES / name / MANIFEST[name]["checkpoint"]


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, imported once per test session: the oracle."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tensorflow = pytest.importorskip("tensorflow")
    return tensorflow


@pytest.fixture
def runner():
    from click.testing import CliRunner

    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart by default
        return CliRunner()

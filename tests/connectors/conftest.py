"""Fixtures for the pure connector tests (no app, no database)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Make the repository root (``tests.*``) and this folder (``connector_samples``, ``deliver``, the fake CRM
# servers) importable in any import mode and when pytest runs through its console script.
ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from memrelay.connectors.base import SourceConfig  # noqa: E402


@pytest.fixture
def make_source() -> Callable[..., SourceConfig]:
    """Build a SourceConfig: ``make_source("stripe", secret="whsec_x", token="t")``."""

    def build(connector: str, **fields: Any) -> SourceConfig:
        return SourceConfig(id=f"src-{connector}", connector=connector, **fields)

    return build

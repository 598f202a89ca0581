"""Fixtures shared by the worker tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.connectors.fake_hubspot import FakeHubSpot, make_contacts


@pytest.fixture
def blocking_hubspot() -> Iterator[tuple[FakeHubSpot, threading.Event, threading.Event]]:
    """A fake HubSpot whose record fetches wait for ``release`` (``entered`` is set when one arrives)."""
    fake = FakeHubSpot(contacts=make_contacts(3)).start()
    entered, release = threading.Event(), threading.Event()

    def hold(method: str, path: str, query: Any, body: Any) -> None:
        if path.endswith("/batch/read"):
            entered.set()
            release.wait(120)

    fake.fail = hold
    yield fake, entered, release
    release.set()
    fake.stop()

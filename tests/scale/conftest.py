"""The real Milvus standalone server (pinned ``milvus`` package, cached install) for ``milvus_server`` tests.

One server per test session, on free ports with a temporary data directory; ``make test-milvus`` installs
it first, so nothing is downloaded while tests run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.milvus_server import MilvusServer


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    server = MilvusServer(tmp_path_factory.mktemp("milvus-server")).start()
    yield server
    server.stop()

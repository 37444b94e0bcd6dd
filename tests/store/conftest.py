"""One throwaway PostgreSQL cluster for the store tests (tests/pg_cluster.py); a fresh database per test."""

from __future__ import annotations

import pytest

from tests.pg_cluster import PgCluster


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    return pg_cluster.new_database()

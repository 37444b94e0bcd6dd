"""The throwaway cluster's outage (`PgCluster.stop`, an immediate stop: a crash) must lose nothing it acknowledged,
as a production database does. Otherwise an outage test blames the gateway for commits the database dropped."""

from __future__ import annotations

import psycopg


def test_an_outage_keeps_every_acknowledged_commit(pg_cluster, pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE acknowledged (n INTEGER PRIMARY KEY)")
    acknowledged = 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for n in range(400):  # one commit each, the last ones just before the crash
            conn.execute("INSERT INTO acknowledged (n) VALUES (%s)", (n,))
            acknowledged += 1
        pg_cluster.stop()
    pg_cluster.start()
    with psycopg.connect(pg_url) as conn:
        kept = conn.execute("SELECT count(*) FROM acknowledged").fetchone()[0]
    assert kept == acknowledged

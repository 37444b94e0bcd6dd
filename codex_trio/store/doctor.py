"""`codex-trio doctor` on the store `store.url` names: for PostgreSQL, is it reachable, at which schema versions,
how many accounts; for SQLite, the account check of the files (`accounts_present_check`).

Read-only: doctor never migrates or creates anything (a mistyped URL must not look fine).
"""

from __future__ import annotations

from typing import Any

from .location import StoreLocation

MIGRATE = "run `codex-trio store migrate` (or start the gateway once)"


def store_checks(config: Any) -> list[tuple[bool, str, str]]:
    """(ok, what was checked, what to do) for the configured store (`config`: a ConfigStore)."""
    from ..commands.accounts import accounts_present_check

    try:
        location = StoreLocation.of(config)
    except ValueError as exc:
        return [(False, str(exc), "fix store.url (CODEX_TRIO__STORE__URL)")]
    if location.dialect == "sqlite":
        return [accounts_present_check(config, location.directory)]
    from ..accounts.store import SCHEMA as ACCOUNTS
    from ..telemetry.store import SCHEMA as OPERATOR

    return postgres_checks(location, {ACCOUNTS.name: ACCOUNTS.version, OPERATOR.name: OPERATOR.version})


def postgres_checks(location: StoreLocation, expected: dict[str, int]) -> list[tuple[bool, str, str]]:
    import psycopg

    from .postgres import CONNECT_TIMEOUT_SECONDS, redact

    where = redact(location.url)
    try:
        with psycopg.connect(location.url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
            versions = _versions(conn)
            if versions is None:
                return [(False, f"store {where} is reachable but holds no codex-trio schema", MIGRATE)]
            checks = [(True, f"store {where} is reachable", "")]
            for name, version in expected.items():
                have = versions.get(name, 0)
                checks.append((have == version, f"{name} schema at version {have} (this program: {version})",
                               MIGRATE if have < version else "upgrade codex-trio: the database is newer"))
            if versions.get("accounts"):
                total, enabled = conn.execute("SELECT count(*), coalesce(sum(enabled), 0) FROM accounts").fetchone()
                checks.append((bool(enabled), f"{enabled} enabled account(s) of {total}",
                               "add one with `codex-trio login`, or `codex-trio accounts import FILE`"))
            return checks
    except psycopg.Error as exc:
        return [(False, f"store {where} cannot be reached ({str(exc).strip()})",
                 "start PostgreSQL or fix store.url (CODEX_TRIO__STORE__URL)")]


def _versions(conn: Any) -> dict[str, int] | None:
    if conn.execute("SELECT to_regclass('schema_versions')").fetchone()[0] is None:
        return None
    return {name: int(version) for name, version in conn.execute("SELECT component, version FROM schema_versions")}

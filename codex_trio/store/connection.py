"""The connection the stores' SQL runs on, whichever engine: `sqlite3.Connection` as it is, or `PgConnection`
(store/postgres.py) — both take the common dialect (store/sql.py) and return rows readable by name and position."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Protocol


class Row(Protocol):
    def __getitem__(self, key: str | int) -> Any: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    rowcount: int
    row_factory: Any

    def execute(self, sql: str, params: Iterable[Any] = ...) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Iterable[Any] = ...) -> Any: ...

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> Any: ...

    def cursor(self) -> Any: ...

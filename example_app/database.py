"""SQLite through aiosqlite: a pool per process, a transaction per request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import aiosqlite

from example_app.upstream import Quote

SCHEMA = """
CREATE TABLE IF NOT EXISTS favourite (
    number INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    author TEXT NOT NULL
)
"""


class Database:
    """A small pool of aiosqlite connections to one SQLite file."""

    def __init__(self, connections: list[aiosqlite.Connection]) -> None:
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for connection in connections:
            self._idle.put_nowait(connection)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosqlite.Connection]:
        connection = await self._idle.get()
        try:
            yield connection
        finally:
            self._idle.put_nowait(connection)


# --8<-- [start:database]
async def open_database(path: str, size: int = 4) -> AsyncIterator[Database]:
    """App-scoped: open the pool and create the schema at startup, close at shutdown."""
    connections: list[aiosqlite.Connection] = []
    try:
        for _ in range(size):
            # isolation_level=None: no implicit transactions; unit_of_work opens one.
            connections.append(await aiosqlite.connect(path, isolation_level=None))
        await connections[0].execute(SCHEMA)
        yield Database(connections)
    finally:
        for connection in connections:
            await connection.close()


# --8<-- [end:database]


# --8<-- [start:health]
async def ping_database(database: Database) -> None:
    """The readiness check of ``database``: it raises if SQLite cannot answer."""
    async with database.connection() as connection:
        await connection.execute("SELECT 1")


# --8<-- [end:health]


# --8<-- [start:unit_of_work]
async def unit_of_work(database: Database) -> AsyncIterator[aiosqlite.Connection]:
    """Request-scoped: one transaction, committed if the view returned a response."""
    async with database.connection() as connection:
        await connection.execute("BEGIN")
        try:
            yield connection
        except BaseException:
            await connection.rollback()  # the view raised: its exception arrives here
            raise
        else:
            await connection.commit()


# --8<-- [end:unit_of_work]


class Favourites:
    """The saved quotes, read and written in the request's transaction."""

    def __init__(self, uow: aiosqlite.Connection) -> None:
        self.uow = uow

    async def add(self, quote: Quote) -> None:
        await self.uow.execute(
            "INSERT OR REPLACE INTO favourite (number, text, author) VALUES (?, ?, ?)",
            (quote["number"], quote["text"], quote["author"]),
        )

    async def all(self) -> list[Quote]:
        rows = await self.uow.execute_fetchall(
            "SELECT number, text, author FROM favourite ORDER BY number"
        )
        return [
            {"number": number, "text": text, "author": author}
            for number, text, author in cast(list[tuple[int, str, str]], rows)
        ]

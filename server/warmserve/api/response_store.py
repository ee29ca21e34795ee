"""The stored responses of the Responses API: one SQLite file that outlives restarts.

`store` keeps a response so that `previous_response_id`, GET and DELETE find it later. Each row
belongs to an owner (the hash of the API key that made it, see `security.key_owner`), and every
read and delete asks for the owner too, so a key never sees another key's responses.

SQLite is synchronous, so one dedicated thread owns the connection and runs every statement; the
event loop only awaits it. The table is bounded by age and count: after each put, rows past
`max_age_s` go, then the oldest beyond `max_count`. Both use the index on `created_at`, and the row
count is kept by triggers in the database itself, so a put never counts the table (and two
processes sharing the file keep one true count).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from warmserve.config import ServerSettings
from warmserve.errors import ResponseStoreError

DATABASE_FILE = "responses.sqlite3"

# Entry i migrates the schema from version i (PRAGMA user_version) to i + 1: a later change of the
# schema appends one, and a file from an older warmserve is brought up to date when opened.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE responses (id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at INTEGER NOT NULL, "
        "model TEXT NOT NULL, response TEXT NOT NULL, input_items TEXT NOT NULL, context TEXT NOT NULL)",
        "CREATE INDEX responses_by_age ON responses (created_at)",
        "CREATE TABLE response_count (n INTEGER NOT NULL)",
        "INSERT INTO response_count VALUES (0)",
        "CREATE TRIGGER responses_counted AFTER INSERT ON responses BEGIN UPDATE response_count SET n = n + 1; END",
        "CREATE TRIGGER responses_uncounted AFTER DELETE ON responses BEGIN UPDATE response_count SET n = n - 1; END",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

_COLUMNS = "id, owner, created_at, model, response, input_items, context"
T = TypeVar("T")


@dataclass(frozen=True)
class StoredResponse:
    """One stored response, with what a continuation needs to rebuild the conversation.

    `context` is the conversation before this request's input (the previous response's context,
    input items and output items), so a `previous_response_id` chain is one read, not a walk.
    """

    id: str
    owner: str
    created_at: int  # unix seconds, as in the response object
    model: str
    response: dict[str, Any]  # the response object as sent to the client
    input_items: list[dict[str, Any]]  # this request's input items, each with an `id`
    context: list[dict[str, Any]]


class ResponseStore:
    """The database at `path`, read and written on its own thread; `open()` before use, `close()` after."""

    def __init__(self, path: Path, *, max_count: int, max_age_s: float, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.max_count = max_count
        self.max_age_s = max_age_s
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="response-store")
        self._connection: sqlite3.Connection | None = None  # used on the executor's thread only

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> ResponseStore:
        return cls(
            settings.data_dir / DATABASE_FILE,
            max_count=settings.response_store_max_count,
            max_age_s=settings.response_store_max_age_s,
        )

    async def open(self) -> None:
        """Create or open the file and bring its schema up to date; ResponseStoreError names the file
        when it cannot be used (unreadable, corrupt, not ours, or from a newer warmserve)."""
        await self._run(self._open)

    async def put(self, record: StoredResponse) -> None:
        """Store `record` (replacing one with the same id), then apply the age and count bounds."""
        await self._run(self._put, record)

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        """The response if `owner` stored it and it has not expired; None otherwise."""
        return await self._run(self._get, owner, response_id)

    async def delete(self, owner: str, response_id: str) -> bool:
        """Delete `owner`'s response; False when there was none (another owner's counts as none)."""
        return await self._run(self._delete, owner, response_id)

    async def close(self) -> None:
        if self._connection is not None:
            await self._run(self._close)
        self._executor.shutdown(wait=False)  # its thread is idle now and exits by itself

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` on the store's thread, with SQLite's errors turned into ones naming the file."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
        except sqlite3.Error as exc:
            raise ResponseStoreError(f"Response store {self.path}: {exc}") from exc

    # --- on the store's thread ---------------------------------------------------------------

    def _open(self) -> None:
        if self._connection is not None:
            raise RuntimeError(f"Response store {self.path} is already open")
        try:
            # Every key's conversations are in this file: folders we create and the file itself are the
            # server user's alone (SQLite gives its -wal and -shm files the database file's mode).
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        except OSError as exc:
            raise ResponseStoreError(
                f"Response store: cannot create {self.path.parent} ({exc}); set --data-dir, or --no-store"
            ) from exc
        connection: sqlite3.Connection | None = None
        try:
            connection = sqlite3.connect(self.path, isolation_level=None)  # transactions are explicit
            # Damage inside the file shows here, at start, rather than as failed requests later.
            problems = [row[0] for row in connection.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError(f"integrity check: {'; '.join(problems)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")  # with WAL: safe from a crash, one fsync less per put
            self._migrate(connection)
            with _transaction(connection):
                self._prune(connection)  # the bounds may have shrunk, or time passed, since the last run
        except sqlite3.Error as exc:
            if connection is not None:
                connection.close()
            raise ResponseStoreError(
                f"Response store {self.path} cannot be used as a SQLite database ({exc}); nothing was deleted: "
                "move the file away to start an empty store, or set --data-dir elsewhere"
            ) from exc
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        self._connection = connection

    def _migrate(self, connection: sqlite3.Connection) -> None:
        """Bring the schema to SCHEMA_VERSION, in one transaction that also reads the version, so two
        servers opening one new file do not both create it."""
        with _transaction(connection):
            [[version]] = connection.execute("PRAGMA user_version").fetchall()
            if version > SCHEMA_VERSION:
                raise ResponseStoreError(
                    f"Response store {self.path} has schema version {version}, newer than this warmserve's "
                    f"({SCHEMA_VERSION}): run a newer warmserve, or set --data-dir elsewhere"
                )
            if version == 0 and connection.execute("SELECT 1 FROM sqlite_master").fetchone():
                raise ResponseStoreError(
                    f"Response store {self.path} holds tables but no warmserve schema version, so it is another "
                    "program's database: set --data-dir elsewhere"
                )
            for migration in _MIGRATIONS[version:]:
                for statement in migration:
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError(f"Response store {self.path} is not open")
        return self._connection

    def _put(self, record: StoredResponse) -> None:
        connection = self._db()
        # ensure_ascii (the default) keeps lone surrogates, which JSON allows, encodable as UTF-8.
        row = (
            record.id,
            record.owner,
            record.created_at,
            record.model,
            json.dumps(record.response),
            json.dumps(record.input_items),
            json.dumps(record.context),
        )
        with _transaction(connection):
            # An upsert: INSERT OR REPLACE would count a replaced row twice (its delete fires no trigger).
            connection.execute(
                f"INSERT INTO responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "owner = excluded.owner, created_at = excluded.created_at, model = excluded.model, "
                "response = excluded.response, input_items = excluded.input_items, context = excluded.context",
                row,
            )
            self._prune(connection)

    def _prune(self, connection: sqlite3.Connection) -> None:
        """Rows past the age bound, then the oldest beyond the count bound; both by the created_at index."""
        connection.execute("DELETE FROM responses WHERE created_at < ?", (self._oldest_kept(),))
        [[count]] = connection.execute("SELECT n FROM response_count").fetchall()
        if count > self.max_count:
            connection.execute(
                "DELETE FROM responses WHERE rowid IN (SELECT rowid FROM responses ORDER BY created_at, rowid LIMIT ?)",
                (count - self.max_count,),
            )

    def _oldest_kept(self) -> float:
        return self._clock() - self.max_age_s

    def _get(self, owner: str, response_id: str) -> StoredResponse | None:
        row = (
            self._db()
            .execute(
                f"SELECT {_COLUMNS} FROM responses WHERE id = ? AND owner = ? AND created_at >= ?",
                (response_id, owner, self._oldest_kept()),
            )
            .fetchone()
        )
        if row is None:
            return None
        id_, owner_, created_at, model, response, input_items, context = row
        return StoredResponse(
            id=id_,
            owner=owner_,
            created_at=created_at,
            model=model,
            response=json.loads(response),
            input_items=json.loads(input_items),
            context=json.loads(context),
        )

    def _delete(self, owner: str, response_id: str) -> bool:
        cursor = self._db().execute("DELETE FROM responses WHERE id = ? AND owner = ?", (response_id, owner))
        return cursor.rowcount > 0

    def _close(self) -> None:
        self._db().close()
        self._connection = None


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (the write lock up front, so a writer never fails half-way on a busy file) .. COMMIT."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")

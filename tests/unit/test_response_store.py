"""The stored-response database: owned rows, bounds by count and age, a restart, its own thread,
and a file it cannot use reported by name instead of wiped."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
import stat
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fake_settings
from warmserve.api.response_store import DATABASE_FILE, ResponseStore, StoredResponse
from warmserve.api.security import ApiKeys, key_owner
from warmserve.errors import ResponseStoreError, Unauthorized

ALICE = key_owner("Bearer alice-key", None)
BOB = key_owner("Bearer bob-key", None)

MakeStore = Callable[..., Awaitable[ResponseStore]]


class Clock:
    """A settable time.time, so the age bound is tested without sleeping."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def record(response_id: str, owner: str = ALICE, created_at: int = 1_000, text: str = "hi") -> StoredResponse:
    return StoredResponse(
        id=response_id,
        owner=owner,
        created_at=created_at,
        model="fake",
        response={"id": response_id, "object": "response", "output": [{"type": "output_text", "text": text}]},
        input_items=[{"id": f"msg_{response_id}", "type": "message", "role": "user", "content": "hello"}],
        context=[{"id": "msg_before", "type": "message", "role": "assistant", "content": "earlier"}],
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(1_000.0)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / DATABASE_FILE


@pytest.fixture
async def make_store(path: Path, clock: Clock) -> AsyncIterator[MakeStore]:
    """Opens stores on `path` with the bounds given, and closes them after the test."""
    opened: list[ResponseStore] = []

    async def make(max_count: int = 100, max_age_s: float = 3_600) -> ResponseStore:
        store = ResponseStore(path, max_count=max_count, max_age_s=max_age_s, clock=clock)
        opened.append(store)  # closed even when it fails to open: its thread goes too
        await store.open()
        return store

    yield make
    for store in opened:
        await store.close()


def stored_ids(path: Path) -> list[str]:
    """The ids in the file itself, read apart from the store: a deleted row is gone, not just hidden."""
    connection = sqlite3.connect(path)
    try:
        return [row[0] for row in connection.execute("SELECT id FROM responses ORDER BY id")]
    finally:
        connection.close()


def sqlite_tables(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
    finally:
        connection.close()


def sqlite_file(path: Path, *statements: str) -> None:
    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            connection.execute(statement)
    finally:
        connection.close()


def damage_every_page_but_the_first(path: Path) -> bytes:
    """Overwrite each b-tree page's cell pointers; the header (page 1) still reads. Returns the new bytes."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")  # the page size, from the header
    for start in range(page, len(data), page):
        data[start + 8 : start + 40] = b"\xff" * 32
    path.write_bytes(bytes(data))
    return bytes(data)


async def test_a_put_response_comes_back_as_it_went_in(make_store: MakeStore):
    store = await make_store()
    stored = record("resp_1", text="héllo \ud800 ✓")  # a lone surrogate is valid JSON input, and must survive
    await store.put(stored)
    assert await store.get(ALICE, "resp_1") == stored
    assert await store.get(ALICE, "resp_missing") is None


async def test_another_key_can_neither_read_nor_delete_a_response(make_store: MakeStore, path: Path):
    store = await make_store()
    await store.put(record("resp_1", owner=ALICE))
    assert await store.get(BOB, "resp_1") is None
    assert await store.get("", "resp_1") is None  # nor a request without any key
    assert await store.delete(BOB, "resp_1") is False
    assert stored_ids(path) == ["resp_1"]
    assert await store.get(ALICE, "resp_1") == record("resp_1", owner=ALICE)


async def test_the_file_holds_the_keys_hash_never_the_key(make_store: MakeStore, path: Path):
    store = await make_store()
    await store.put(record("resp_1", owner=key_owner("Bearer alice-key", None)))
    await store.close()  # the log is folded into the file
    content = await asyncio.to_thread(path.read_bytes)
    assert hashlib.sha256(b"alice-key").hexdigest().encode() in content
    assert b"alice-key" not in content


async def test_delete_removes_the_row_once(make_store: MakeStore, path: Path):
    store = await make_store()
    await store.put(record("resp_1"))
    await store.put(record("resp_2"))
    assert await store.delete(ALICE, "resp_1") is True
    assert await store.get(ALICE, "resp_1") is None
    assert await store.delete(ALICE, "resp_1") is False
    assert stored_ids(path) == ["resp_2"]


async def test_responses_survive_a_restart(make_store: MakeStore):
    first = await make_store()
    await first.put(record("resp_1"))
    await first.close()
    second = await make_store()
    assert await second.get(ALICE, "resp_1") == record("resp_1")


async def test_the_count_bound_drops_the_oldest_by_creation_time(make_store: MakeStore, path: Path):
    store = await make_store(max_count=3)
    for response_id, created_at in [("a", 1_000), ("b", 990), ("c", 1_005), ("d", 1_001), ("e", 1_003)]:
        await store.put(record(response_id, created_at=created_at))
    assert stored_ids(path) == ["c", "d", "e"]  # b and a were the oldest, though a was put first
    assert await store.get(ALICE, "b") is None


async def test_a_lower_count_bound_applies_when_the_store_opens(make_store: MakeStore, path: Path):
    roomy = await make_store(max_count=10)
    for i in range(4):
        await roomy.put(record(f"r{i}", created_at=1_000 + i))
    await roomy.close()
    await make_store(max_count=2)
    assert stored_ids(path) == ["r2", "r3"]


async def test_the_age_bound_hides_then_deletes_old_responses(make_store: MakeStore, clock: Clock, path: Path):
    store = await make_store(max_age_s=100)
    await store.put(record("old", created_at=950))
    await store.put(record("new", created_at=1_000))
    assert await store.get(ALICE, "old") == record("old", created_at=950)
    clock.now = 1_060  # "old" is 110 s old now, "new" 60 s
    assert await store.get(ALICE, "old") is None
    assert await store.get(ALICE, "new") == record("new", created_at=1_000)
    await store.put(record("newer", created_at=1_060))
    assert stored_ids(path) == ["new", "newer"]


async def test_a_put_with_a_known_id_replaces_it_and_counts_once(make_store: MakeStore, path: Path):
    store = await make_store(max_count=2)
    await store.put(record("a", created_at=1_000, text="first"))
    await store.put(record("b", created_at=1_001))
    await store.put(record("a", created_at=1_002, text="second"))
    assert stored_ids(path) == ["a", "b"]  # two rows, not three: the replace did not count as one more
    assert await store.get(ALICE, "a") == record("a", created_at=1_002, text="second")
    await store.put(record("c", created_at=1_003))
    assert stored_ids(path) == ["a", "c"]  # b is now the oldest


async def test_sqlite_runs_on_one_thread_that_is_not_the_event_loops(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
):
    """Every statement is traced with the thread that runs it, and one INSERT is held until the loop
    has run something else: a store that blocked the loop would never let it."""
    threads: set[int] = set()
    inserting, release = threading.Event(), threading.Event()
    connect = sqlite3.connect

    def traced_connect(path: Path, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = connect(path, **kwargs)

        def trace(statement: str) -> None:
            threads.add(threading.get_ident())
            if statement.startswith("INSERT INTO responses"):
                inserting.set()
                release.wait(20)  # only a deadlock breaker: the test releases it at once

        connection.set_trace_callback(trace)
        return connection

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    store = await make_store()
    put = asyncio.create_task(store.put(record("resp_1")))
    assert await asyncio.to_thread(inserting.wait, 20)  # the loop ran this while the INSERT was under way
    assert not put.done()
    release.set()
    await put
    assert await store.get(ALICE, "resp_1") == record("resp_1")
    assert len(threads) == 1
    assert threading.get_ident() not in threads


async def test_the_store_from_settings_creates_its_folders_and_uses_wal(tmp_path: Path):
    settings = fake_settings(
        server={"data_dir": tmp_path / "a" / "b", "response_store_max_count": 5, "response_store_max_age_s": 60}
    )
    store = ResponseStore.from_settings(settings)
    assert (store.path, store.max_count, store.max_age_s) == (tmp_path / "a" / "b" / DATABASE_FILE, 5, 60)
    await store.open()
    await store.put(record("resp_1"))
    wal = store.path.with_name(store.path.name + "-wal")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (store.path, wal, store.path.parent)}
    await store.close()
    # every key's conversations are in there: for the server's user alone
    assert modes == {DATABASE_FILE: 0o600, wal.name: 0o600, "b": 0o700}
    connection = sqlite3.connect(store.path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA user_version").fetchone() == (1,)
    finally:
        connection.close()


async def test_a_corrupt_file_is_named_in_the_error_and_left_as_it_was(make_store: MakeStore, path: Path):
    garbage = b"this is not a database\n" * 500
    await asyncio.to_thread(path.write_bytes, garbage)
    with pytest.raises(ResponseStoreError, match=re.escape(str(path))) as info:
        await make_store()
    assert "nothing was deleted" in info.value.message
    assert await asyncio.to_thread(path.read_bytes) == garbage


async def test_damage_inside_a_valid_file_is_found_when_it_opens(make_store: MakeStore, path: Path):
    """The header still reads, so only the integrity check at open sees it (not the first unlucky request)."""
    store = await make_store()
    for i in range(100):
        await store.put(record(f"resp_{i}", text="x" * 500))
    await store.close()
    damaged = await asyncio.to_thread(damage_every_page_but_the_first, path)
    with pytest.raises(ResponseStoreError, match=re.escape(str(path)) + r".*integrity check"):
        await make_store()
    assert await asyncio.to_thread(path.read_bytes) == damaged


async def test_a_file_from_a_newer_warmserve_is_refused(make_store: MakeStore, path: Path):
    sqlite_file(path, "PRAGMA user_version = 99")
    with pytest.raises(ResponseStoreError, match=r"schema version 99, newer"):
        await make_store()


async def test_another_programs_database_is_refused(make_store: MakeStore, path: Path):
    sqlite_file(path, "CREATE TABLE notes (text TEXT)")
    with pytest.raises(ResponseStoreError, match=r"another program's database"):
        await make_store()
    assert await asyncio.to_thread(sqlite_tables, path) == ["notes"]


def test_the_owner_is_the_hash_of_the_presented_key_never_the_key():
    digest = hashlib.sha256(b"alice-key").hexdigest()
    assert key_owner("Bearer alice-key", None) == digest
    assert key_owner("bearer  alice-key ", None) == digest  # parsed as ApiKeys.check parses it
    assert key_owner(None, "alice-key") == digest  # x-api-key, as Anthropic's clients send it
    assert key_owner("Bearer alice-key", "alice-key") == digest
    assert key_owner("Bearer bob-key", None) != digest


def test_no_key_presented_means_the_anonymous_owner():
    assert key_owner(None, None) == ""
    assert key_owner("", "  ") == ""
    assert key_owner("Basic YWxpY2U6cHc=", None) == ""  # not a Bearer token: no key


def test_two_different_keys_in_one_request_own_neither_keys_responses():
    """Both headers may be sent and the check passes on either, so a shared stray Bearer token must not
    let one x-api-key read what another stored."""
    stray = key_owner("Bearer placeholder", None)
    with_alice = key_owner("Bearer placeholder", "alice-key")
    with_bob = key_owner("Bearer placeholder", "bob-key")
    assert len({stray, with_alice, with_bob, key_owner(None, "alice-key")}) == 4


def test_api_keys_still_accept_either_header():
    keys = ApiKeys(["alice-key"])
    keys.check("Bearer alice-key")
    keys.check(None, " alice-key ")
    keys.check("Bearer wrong", "alice-key")
    with pytest.raises(Unauthorized):
        keys.check("Basic alice-key")

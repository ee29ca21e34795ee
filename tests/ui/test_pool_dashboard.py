"""The pool dashboard in chromium: live numbers, a SIGKILLed worker, and an admin's unload and load.

Every change is pushed by the server's feed; the assertions wait on the DOM (Playwright's expect),
never on a clock.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.ui.conftest import FAKE, SMOL, open_page
from warmserve.testing import ServerProcess

RESTART_MS = 180_000  # a real model's worker reloading on a busy 2-core machine


@pytest.fixture
def pool(browser: Browser, ui_server: ServerProcess) -> Iterator[Page]:
    yield from open_page(browser, f"{ui_server.base_url}/ui/pool")


def card(page: Page, model: str) -> Locator:
    return page.locator(f".model-card[data-model='{model}']")


def workers(server: ServerProcess, model: str) -> list[dict]:
    answer = httpx.get(f"{server.base_url}/admin/models/{model}", timeout=10)
    answer.raise_for_status()
    return answer.json()["workers"]


def test_each_model_is_shown_live_with_its_workers_and_last_minute(
    pool: Page, ui_server: ServerProcess, artefacts: Path
):
    expect(pool.locator("#feed-state")).to_have_text("live")
    smol = card(pool, SMOL)
    expect(smol.locator("[data-testid=model-state]")).to_have_text("ready")
    expect(card(pool, FAKE).locator("[data-testid=model-state]")).to_have_text("ready")
    for worker in workers(ui_server, SMOL):
        row = smol.locator(f"tr[data-worker='{worker['index']}']")
        expect(row.locator("td").nth(1)).to_have_text(str(worker["pid"]))
        expect(row.locator("[data-testid=worker-state]")).to_have_text("ready")
        expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^\d+ / \d+$"))
    client = ui_server.openai_client()
    client.chat.completions.create(
        model=SMOL, messages=[{"role": "user", "content": "Count to five."}], max_tokens=24, temperature=0
    )
    expect(smol.locator("dd[data-key=requests]")).not_to_have_text("0")
    expect(smol.locator("dd[data-key=tokens_per_s]")).not_to_have_text("0.0")
    expect(smol.locator("dd[data-key=ttft_s]")).to_have_text(re.compile(r"^\d+\.\d\d s$"))
    expect(smol.locator("dd[data-key=cache_hit_rate]")).to_have_text(re.compile(r"^\d+ %$"))
    expect(smol.locator("svg.chart path.tps")).to_have_attribute("d", re.compile(r"^M.*L"))
    pool.screenshot(path=artefacts / "pool.png", full_page=True)


def test_a_worker_killed_with_sigkill_shows_as_died_then_restarted(pool: Page, ui_server: ServerProcess):
    smol = card(pool, SMOL)
    expect(smol.locator("[data-testid=model-state]")).to_have_text("ready")
    victim = workers(ui_server, SMOL)[0]
    os.kill(victim["pid"], signal.SIGKILL)
    expect(pool.locator("#pool-log")).to_contain_text(
        f"{SMOL}: worker 0 died (pid {victim['pid']}): exited with code -9"
    )
    row = smol.locator("tr[data-worker='0']")
    expect(row.locator("[data-testid=last-exit]")).to_have_text("exited with code -9")
    expect(row.locator("[data-testid=restarts]")).to_have_text("1", timeout=RESTART_MS)
    expect(pool.locator("#pool-log")).to_contain_text(f"{SMOL}: worker 0 restarted", timeout=RESTART_MS)
    expect(row.locator("td").nth(1)).not_to_have_text(str(victim["pid"]))
    expect(row.locator("[data-testid=worker-state]")).to_have_text("ready", timeout=RESTART_MS)
    expect(smol.locator("[data-testid=model-state]")).to_have_text("ready", timeout=RESTART_MS)


def test_an_admin_unload_shows_the_drain_then_unloaded_and_load_brings_it_back(pool: Page):
    fake = card(pool, FAKE)
    expect(fake.locator("[data-testid=model-state]")).to_have_text("ready")
    fake.get_by_role("button", name="Unload").click()
    expect(fake.locator("[data-testid=model-state]")).to_have_text("unloaded")
    log = pool.locator("#pool-log")
    expect(log).to_contain_text(f"{FAKE}: ready → draining")
    expect(log).to_contain_text(f"{FAKE}: draining → stopping")
    expect(log).to_contain_text(f"{FAKE}: stopping → unloaded")
    expect(fake.locator("tbody tr")).to_have_count(0)
    fake.get_by_role("button", name="Load").click()
    expect(fake.locator("[data-testid=model-state]")).to_have_text("ready")
    expect(fake.locator("tbody tr")).to_have_count(1)


def test_an_admin_adds_a_model_from_the_form_and_removes_it(pool: Page):
    pool.locator("#admin summary").click()
    form = pool.locator("#add-model")
    form.locator("[name=name]").fill("extra")
    form.locator("[name=path]").fill("unused")
    form.locator("[name=backend]").select_option("fake")
    form.get_by_role("button", name="Add").click()
    extra = card(pool, "extra")
    expect(extra.locator("[data-testid=model-state]")).to_have_text("ready")
    expect(pool.locator("#add-adapter [name=model] option[value='extra']")).to_have_count(1)
    pool.once("dialog", lambda dialog: dialog.accept())
    extra.get_by_role("button", name="Remove").click()
    expect(extra).to_have_count(0)
    expect(pool.locator("#pool-log")).to_contain_text("extra: stopping → unloaded")


def test_an_admin_adds_and_removes_an_adapter(pool: Page):
    """The fake engine takes any existing path as an adapter."""
    pool.locator("#admin summary").click()
    form = pool.locator("#add-adapter")
    expect(form.locator(f"[name=model] option[value='{FAKE}']")).to_have_count(1)
    form.locator("[name=model]").select_option(FAKE)
    form.locator("[name=name]").fill("warm")
    form.locator("[name=path]").fill(__file__)
    form.get_by_role("button", name="Add").click()
    adapters = card(pool, FAKE).locator(".adapters")
    expect(adapters).to_contain_text("warm ready")
    adapters.get_by_role("button", name="Remove").click()
    expect(adapters).not_to_contain_text("warm")

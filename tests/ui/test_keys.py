"""The page on a server with API keys and an admin key: nothing but the page before a key is entered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response, expect

from tests.conftest import start_fake_server
from tests.ui.conftest import open_page
from warmserve.testing import ServerProcess

KEY = "sk-ui-user"
ADMIN = "sk-ui-admin"
DATA = ("/v1/", "/ui/events", "/admin/")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("keys")
    server = start_fake_server(tmp, {"token_delay_s": 0.01}, api_keys=[KEY], admin_api_keys=[ADMIN])
    yield server
    server.stop()


def enter_key(page: Page, key: str, admin: str = "") -> None:
    expect(page.locator("#key-dialog")).to_be_visible()
    page.fill("#key-input", key)
    page.fill("#admin-key-input", admin)
    page.press("#key-input", "Enter")
    expect(page.locator("#key-dialog")).not_to_be_visible()


def data_answers(page: Page) -> list[Response]:
    seen: list[Response] = []
    page.on("response", lambda response: seen.append(response) if any(p in response.url for p in DATA) else None)
    return seen


def test_no_request_succeeds_before_a_key_is_entered(browser: Browser, keyed: ServerProcess):
    for page in open_page(browser, f"{keyed.base_url}/ui"):
        expect(page.locator("#key-dialog")).to_be_visible()
        expect(page.locator("#connection")).to_have_text("needs an API key")
        page.goto(f"{keyed.base_url}/ui/pool")  # the dashboard's feed too
        seen = data_answers(page)
        page.reload()
        expect(page.locator("#feed-state")).to_have_text("needs an API key")
        assert seen
        assert {response.status for response in seen} == {401}
        assert page.locator(".model-card").count() == 0
        enter_key(page, KEY)
        expect(page.locator("#feed-state")).to_have_text("live")
        expect(page.locator(".model-card[data-model='fake']")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('warmserve.apiKey')") == KEY
        assert page.evaluate("localStorage.getItem('warmserve.apiKey')") is None
        page.get_by_role("link", name="Playground").click()
        page.fill("#prompt", "hello world")
        page.press("#prompt", "Enter")
        expect(page.locator(".msg.assistant [data-testid=stats]")).to_contain_text("finish")


def test_admin_actions_need_the_admin_key(browser: Browser, keyed: ServerProcess):
    for page in open_page(browser, f"{keyed.base_url}/ui/pool"):
        enter_key(page, KEY)
        fake = page.locator(".model-card[data-model='fake']")
        fake.get_by_role("button", name="Unload").click()
        expect(page.locator("#key-reason")).to_contain_text("Admin actions need an admin key")
        expect(page.locator("#admin-key-input")).to_be_focused()
        expect(page.locator("#pool-log")).to_contain_text("failed")
        expect(fake.locator("[data-testid=model-state]")).to_have_text("ready")
        page.fill("#admin-key-input", ADMIN)
        page.press("#admin-key-input", "Enter")
        expect(page.locator("#key-dialog")).not_to_be_visible()
        expect(page.locator("#feed-state")).to_have_text("live")
        fake.get_by_role("button", name="Unload").click()
        expect(fake.locator("[data-testid=model-state]")).to_have_text("unloaded")
        fake.get_by_role("button", name="Load").click()
        expect(fake.locator("[data-testid=model-state]")).to_have_text("ready")


def test_an_admin_key_alone_shows_the_dashboard_but_not_the_models_of_the_playground(
    browser: Browser, keyed: ServerProcess
):
    for page in open_page(browser, f"{keyed.base_url}/ui/pool"):
        expect(page.locator("#key-dialog")).to_be_visible()
        page.fill("#admin-key-input", ADMIN)
        page.press("#admin-key-input", "Enter")
        expect(page.locator("#feed-state")).to_have_text("live")
        expect(page.locator(".model-card[data-model='fake'] [data-testid=model-state]")).to_have_text("ready")
        expect(page.locator("#key-dialog")).to_be_visible()  # /v1/models wants the API key
        page.click("#key-cancel")
        expect(page.locator("#connection")).to_have_text("needs an API key")

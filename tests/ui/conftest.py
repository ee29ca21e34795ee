"""The web page in a real browser: Debian's chromium driven by Playwright, against real servers.

One server for the page's tests (`ui_server`): the embedded SmolLM2 on two single-thread workers
and a fast fake model ("fake", whose answer is its prompt's words reversed at temperature 0, so a
test can make it say exactly what it wants, HTML included), and a fake reasoning model. Each test
gets a fresh browser context (its own localStorage and sessionStorage) and fails if the page threw
or broke its CSP.
Screenshots go to test-artefacts/ui/ (kept, not compared).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.conftest import start_server, write_config
from warmserve.config import EMBEDDED_MODEL_NAME, embedded_model_path
from warmserve.testing import ServerProcess

SMOL = EMBEDDED_MODEL_NAME
FAKE = "fake"
THINKER = "thinker"  # a fake reasoning model: it thinks its prompt's words in order, then answers
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "ui"


def chromium_path() -> str:
    """Debian's chromium (.ci/run installs it): Playwright cannot download its own browser here."""
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        raise RuntimeError("chromium is not installed: apt-get install chromium (.ci/run does)")
    return found


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Per module: Playwright's sync API keeps an event loop running in this thread while it is open,
    which the async tests of other modules (pytest-asyncio) could not start under."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Chromium's sandbox needs user namespaces, which a container running as root lacks.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=args)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def artefacts() -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return ARTEFACTS


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("ui")
    models = [
        {"name": SMOL, "path": str(embedded_model_path()), "workers": 2, "threads": 1, "n_ctx": 1024},
        {"name": FAKE, "backend": "fake", "workers": 1, "n_ctx": 4096, "fake": {"token_delay_s": 0.01}},
        {"name": THINKER, "backend": "fake", "workers": 1, "reasoning": {"markers": ["<think>", "</think>"]}},
    ]
    server = start_server(["--config", str(write_config(tmp / "warmserve.yaml", {"models": models}))], tmp)
    yield server
    server.stop()


def open_page(browser: Browser, url: str, width: int = 1280, height: int = 860) -> Iterator[Page]:
    """A page in a fresh context that records errors; the test fails if any happened."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    page.goto(url)
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def page(browser: Browser, ui_server: ServerProcess) -> Iterator[Page]:
    yield from open_page(browser, f"{ui_server.base_url}/ui")


def metric(server: ServerProcess, name: str, model: str) -> float:
    """A counter's value for one model from /metrics (0 when it has no sample yet)."""
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    prefix = f'{name}{{model="{model}"}} '
    values = [float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix)]
    return values[0] if values else 0.0

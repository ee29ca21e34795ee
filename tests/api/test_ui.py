"""The web page's routes in process: the page, its files, its headers, --no-ui, and the feed's auth.

The feed's content (an endless stream, which ASGITransport would buffer) is tested against a real
fake-backend server in tests/ui/test_feed.py.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from tests.api.conftest import serve_in_process
from tests.conftest import fake_settings
from warmserve.cli import build_parser, settings_from_args
from warmserve.ui import load_assets

KEY = "sk-ui-test"


async def test_root_redirects_to_the_playground():
    async with serve_in_process(fake_settings()) as http:
        answer = await http.get("/")
    assert answer.status_code == 307
    assert answer.headers["location"] == "/ui"


@pytest.mark.parametrize("path", ["/ui", "/ui/", "/ui/pool"])
async def test_both_views_are_the_page_with_a_policy_that_runs_only_this_origins_scripts(path):
    async with serve_in_process(fake_settings()) as http:
        answer = await http.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(part.strip().split(" ", 1) for part in answer.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert "unsafe" not in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/ui/static/app.js">' in answer.text
    assert "<script>" not in answer.text  # no inline script: the policy would refuse it anyway
    assert "access-control-allow-origin" not in answer.headers


async def test_files_come_gzipped_with_an_etag_and_a_revalidation_is_a_304():
    async with serve_in_process(fake_settings()) as http:
        plain = await http.get("/ui/static/app.js", headers={"accept-encoding": "identity"})
        zipped = await http.get("/ui/static/app.js", headers={"accept-encoding": "gzip"})
        again = await http.get("/ui/static/app.js", headers={"if-none-match": plain.headers["etag"]})
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content  # httpx decodes: the same file
    assert int(zipped.headers["content-length"]) < len(plain.content)
    assert again.status_code == 304
    assert "content-security-policy" in zipped.headers


@pytest.mark.parametrize("path", ["/ui/static/nope.js", "/ui/static/../__init__.py", "/ui/static/%2e%2e/__init__.py"])
async def test_a_file_the_page_lacks_is_a_404_in_the_apis_shape(path):
    async with serve_in_process(fake_settings()) as http:
        answer = await http.get(path)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_every_file_the_page_loads_ships_and_the_page_is_small():
    """index.html's links and every module's imports resolve to shipped files; the whole page gzipped
    stays well under 300 KB."""
    assets = load_assets()
    html = assets["index.html"].body.decode()
    wanted = set(re.findall(r'(?:src|href)="/ui/static/([^"]+)"', html))
    for name, asset in assets.items():
        if name.endswith(".js"):
            wanted |= set(re.findall(r'from "\./([^"]+)"', asset.body.decode()))
    assert {"app.js", "app.css", "playground.js", "pool.js", "markdown.js"} <= wanted
    assert wanted <= set(assets)
    assert sum(len(asset.gzipped) for asset in assets.values()) < 300_000
    assert all(gzip.decompress(asset.gzipped) == asset.body for asset in assets.values())


async def test_no_ui_turns_off_the_page_and_the_redirect():
    async with serve_in_process(fake_settings(server={"ui": False})) as http:
        for path in ("/", "/ui", "/ui/pool", "/ui/static/app.js", "/ui/events"):
            answer = await http.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["error"]["code"] == "not_found"
        assert (await http.get("/v1/models")).status_code == 200


def test_the_no_ui_flag_sets_the_setting():
    assert settings_from_args(build_parser().parse_args(["serve", "--no-ui"])).ui is False
    assert settings_from_args(build_parser().parse_args(["serve"])).ui is True


async def test_with_keys_the_page_loads_without_one_but_its_data_needs_one():
    async with serve_in_process(fake_settings(server={"api_keys": [KEY]})) as http:
        assert (await http.get("/ui")).status_code == 200
        assert (await http.get("/ui/static/app.js")).status_code == 200
        for path in ("/ui/events", "/v1/models"):
            refused = await http.get(path)
            assert refused.status_code == 401, path
            assert refused.json()["error"]["code"] == "invalid_api_key"
        wrong = await http.get("/ui/events", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        listed = await http.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
        assert listed.status_code == 200


async def test_a_bad_feed_interval_is_a_400_naming_it():
    async with serve_in_process(fake_settings()) as http:
        answer = await http.get("/ui/events", params={"interval_s": "0"})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "query.interval_s"


async def test_cors_stays_closed_to_other_origins():
    async with serve_in_process(fake_settings()) as http:
        answer = await http.options(
            "/v1/models", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
    assert "access-control-allow-origin" not in answer.headers


async def test_time_to_first_token_is_a_prometheus_histogram_and_the_last_minute_counts_tokens_as_drawn():
    async with serve_in_process(fake_settings()) as http:
        answer = await http.post(
            "/v1/chat/completions",
            json={"model": "fake", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 5},
        )
        assert answer.status_code == 200
        metrics = (await http.get("/metrics")).text
        rates = http._transport.app.state.metrics.recent("fake").rates()  # type: ignore[attr-defined]
    assert 'warmserve_time_to_first_token_seconds_count{model="fake"} 1.0' in metrics
    assert rates.requests == 1
    assert rates.ttft_s is not None
    assert rates.tokens_per_s * rates.window_s == pytest.approx(answer.json()["usage"]["completion_tokens"])


def test_the_wheel_ships_every_file_of_the_page():
    """pyproject's package-data patterns cover every file under ui/static (the wheel and the image take them)."""
    root = Path(__file__).resolve().parents[2]
    section = (root / "pyproject.toml").read_text().split("[tool.setuptools.package-data]", 1)[1]
    line = re.search(r"^warmserve = \[(.*)\]$", section, re.MULTILINE)
    assert line is not None
    patterns = [pattern.strip().strip('"') for pattern in line.group(1).split(",")]
    package = root / "server" / "warmserve"
    shipped = {path for pattern in patterns for path in package.glob(pattern) if path.is_file()}
    files = {path for path in (package / "ui" / "static").rglob("*") if path.is_file()}
    assert "index.html" in {path.name for path in files}
    assert files <= shipped

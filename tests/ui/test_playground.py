"""The playground in chromium: streamed answers, Stop, safe rendering, side by side, edits, history, copy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.ui.conftest import FAKE, SMOL, THINKER, metric, open_page
from warmserve.testing import ServerProcess, server_environment

STREAM_S = 120_000  # ms: a real model's answer on a busy 2-core machine


def choose(page: Page, lane: int, model: str, **fields: str) -> None:
    form = page.locator("fieldset.lane-settings").nth(lane)
    form.locator("select[name=model]").select_option(model)
    for name, value in fields.items():
        form.locator(f"[name={name}]").fill(value)


def send(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def answers(page: Page, lane: int = 0):
    return page.locator(f"#transcript-{lane} .msg.assistant")


def test_a_message_streams_in_piece_by_piece_with_its_stats(page: Page, artefacts: Path):
    expect(page.locator("fieldset.lane-settings select[name=model]")).to_have_value(SMOL)
    expect(page.locator(".model-info")).to_contain_text("llama_cpp")
    expect(page.locator(".model-info")).to_contain_text("1024 tokens")
    choose(page, 0, SMOL, temperature="0", max_tokens="40")
    page.fill("#system", "You are a helpful assistant.")
    send(page, "Name three colours of the rainbow.")
    answer = answers(page).last
    # Text is on the page while the answer is still streaming (the cursor shows): it came in pieces.
    expect(answer.locator(".content.cursor")).not_to_have_text("", timeout=STREAM_S)
    expect(answer.locator(".content.cursor")).to_have_count(0, timeout=STREAM_S)
    stats = answer.locator("[data-testid=stats]")
    expect(stats).to_contain_text(re.compile(r"\d+ tokens"))
    expect(stats).to_contain_text("TTFT")
    expect(stats).to_contain_text("tok/s")
    expect(stats).to_contain_text("cached")
    expect(stats).to_contain_text(re.compile(r"finish: (stop|length)"))
    assert answer.locator(".content").inner_text().strip()
    page.screenshot(path=artefacts / "playground.png", full_page=True)


def test_stop_aborts_the_answer_and_the_server_cancels_it_in_the_worker(page: Page, ui_server: ServerProcess):
    before = metric(ui_server, "warmserve_requests_cancelled_total", SMOL)
    choose(page, 0, SMOL, temperature="1", seed="7", max_tokens="900")
    send(page, "Write a very long story about a dragon who learns to bake bread.")
    answer = answers(page).last
    expect(answer.locator(".content.cursor")).not_to_have_text("", timeout=STREAM_S)
    page.click("#stop")
    expect(answer.locator("[data-testid=stats]")).to_contain_text("finish: stopped")
    expect(page.locator("#send")).to_be_visible()
    deadline = time.monotonic() + 30
    while metric(ui_server, "warmserve_requests_cancelled_total", SMOL) <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert metric(ui_server, "warmserve_requests_cancelled_total", SMOL) == before + 1


def test_escape_stops_an_answer_from_the_keyboard(page: Page):
    choose(page, 0, FAKE, temperature="0", max_tokens="3000")
    page.focus("#prompt")
    page.keyboard.type("many words to repeat")
    page.keyboard.press("Enter")
    answer = answers(page).last
    expect(answer.locator(".content.cursor")).not_to_have_text("")
    page.keyboard.press("Escape")
    expect(answer.locator("[data-testid=stats]")).to_contain_text("finish: stopped")
    expect(page.locator("#prompt")).to_be_focused()


def test_html_in_an_answer_is_shown_as_text_and_runs_nothing(page: Page):
    """The fake model says exactly this (its prompt's words, reversed, at temperature 0)."""
    said = ["**bold**", "<img", "src=x", "onerror=window.pwned=1>", "<script>window.pwned=2</script>"]
    choose(page, 0, FAKE, temperature="0", max_tokens=str(len(said)))
    send(page, " ".join(reversed(said)))
    content = answers(page).last.locator(".content")
    expect(content).to_contain_text("<img src=x onerror=window.pwned=1> <script>window.pwned=2</script>")
    expect(answers(page).last.locator("[data-testid=stats]")).to_contain_text("finish: length")
    expect(content.locator("strong")).to_have_text("bold")  # Markdown still renders
    assert page.locator("#transcripts img, #transcripts script, #transcripts [onerror]").count() == 0
    assert page.evaluate("window.pwned") is None


def test_a_reasoning_model_gets_an_effort_control_and_its_thinking_shows_in_its_own_block(page: Page):
    form = page.locator("fieldset.lane-settings")
    choose(page, 0, FAKE)
    expect(form.locator("select[name=reasoning_effort]")).to_have_count(0)  # only where the model reasons
    choose(page, 0, THINKER, temperature="0", max_tokens="40")
    form.locator("select[name=reasoning_effort]").select_option("high")
    send(page, "think about this")
    answer = answers(page).last
    expect(answer.locator("[data-testid=stats]")).to_contain_text("finish")
    expect(answer.locator("details.reasoning .text")).to_contain_text("think about this")
    expect(answer.locator(".content")).not_to_contain_text("<think>")


def test_a_tool_call_is_shown_as_a_call(page: Page):
    tools = (
        '[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", '
        '"properties": {"city": {"type": "string"}}, "required": ["city"]}}}]'
    )
    choose(page, 0, FAKE, temperature="0", max_tokens="60", tools=tools)
    page.locator("fieldset.lane-settings select[name=tool_choice]").select_option("required")
    send(page, "weather in Paris")
    answer = answers(page).last
    expect(answer.locator("[data-testid=stats]")).to_contain_text("finish: tool_calls")
    expect(answer.locator(".tool-call")).to_contain_text("call get_weather({")
    expect(answer.locator(".tool-call")).to_contain_text('"city"')


def test_side_by_side_sends_one_prompt_to_two_models(page: Page):
    page.check("#compare")
    choose(page, 0, FAKE, temperature="0", max_tokens="3")
    choose(page, 1, FAKE, temperature="0", max_tokens="2")
    send(page, "one two three")
    expect(answers(page, 0).last.locator(".content")).to_have_text("three two one")
    expect(answers(page, 1).last.locator(".content")).to_have_text("three two")
    expect(page.locator("#transcript-1 h2")).to_contain_text(f"B · {FAKE}")


def test_regenerate_edit_and_resend_and_history_that_survives_a_reload_until_cleared(page: Page):
    choose(page, 0, FAKE, temperature="0", max_tokens="2")
    send(page, "alpha beta")
    transcript = page.locator("#transcript-0")
    expect(answers(page).last.locator(".content")).to_have_text("beta alpha")
    answers(page).last.get_by_role("button", name="Regenerate").click()
    expect(answers(page)).to_have_count(1)
    expect(answers(page).last.locator("[data-testid=stats]")).to_contain_text("finish: length")
    transcript.locator(".msg.user").first.get_by_role("button", name="Edit").click()
    page.fill("[aria-label='Edited message']", "gamma delta")
    page.press("[aria-label='Edited message']", "Enter")
    expect(answers(page).last.locator(".content")).to_have_text("delta gamma")
    expect(transcript.locator(".msg")).to_have_count(2)
    page.reload()
    expect(page.locator("#transcript-0 .msg.user")).to_have_text(re.compile("gamma delta"))
    page.click("#clear-history")
    expect(page.locator("#transcript-0 .msg")).to_have_count(0)
    page.reload()
    expect(page.locator("#transcript-0 .empty")).to_be_visible()


def test_copy_as_writes_the_current_request_and_each_snippet_runs(page: Page, ui_server: ServerProcess):
    """curl, the openai client and LangChain each get the answer the page would (the fake's, exactly)."""
    page.get_by_text("More sampling").click()
    choose(page, 0, FAKE, temperature="0", max_tokens="3", top_k="20")
    page.fill("#prompt", "one two three")
    page.click("#copy-as")
    code = page.locator("#copy-code")
    expect(code).to_contain_text(f"curl -N {ui_server.base_url}/v1/chat/completions")
    expect(code).to_contain_text('"top_k": 20')
    expect(code).to_contain_text('"content": "one two three"')
    snippets = {"curl": code.inner_text()}
    page.get_by_role("tab", name="Python (openai)").click()
    expect(code).to_contain_text("client.chat.completions.create(")
    expect(code).to_contain_text('extra_body={\n        "top_k": 20,')
    snippets["python"] = code.inner_text()
    page.get_by_role("tab", name="LangChain").click()
    expect(code).to_contain_text("from langchain_warmserve import ChatWarmServe")
    expect(code).to_contain_text("top_k=20,")
    snippets["langchain"] = code.inner_text()
    page.keyboard.press("Escape")
    expect(page.locator("#copy-dialog")).not_to_be_visible()
    env = server_environment()
    for kind, snippet in snippets.items():
        command = ["bash", "-c", snippet] if kind == "curl" else [sys.executable, "-c", snippet]
        ran = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
        assert ran.returncode == 0, (kind, ran.stderr)
        printed = streamed_text(ran.stdout) if kind == "curl" else ran.stdout
        assert "three two one" in printed, (kind, ran.stdout)


def streamed_text(sse: str) -> str:
    """The text of a chat completion's SSE stream, as curl printed it."""
    chunks = [json.loads(line[6:]) for line in sse.splitlines() if line.startswith("data: {")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_at_phone_width_everything_is_one_column(browser, ui_server: ServerProcess):

    for page in open_page(browser, f"{ui_server.base_url}/ui", width=390, height=844):
        settings = page.locator(".settings").bounding_box()
        chat = page.locator(".chat").bounding_box()
        assert settings is not None
        assert chat is not None
        assert settings["y"] >= chat["y"] + chat["height"]  # the chat first, the settings below it
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.goto(f"{ui_server.base_url}/ui/pool")
        expect(page.locator(".model-card").first).to_be_visible()
        card = page.locator(".model-card").first.bounding_box()
        assert card is not None
        assert card["x"] + card["width"] <= 390
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

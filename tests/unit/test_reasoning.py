"""The thinking block of a reasoning model: split from the answer however the text is chunked,
the prompt opened or closed as a request asks, and a budget that closes the block itself."""

from __future__ import annotations

import pytest

from warmserve.backends.reasoning import ReasoningModel, Thinking, chat_plan, shape_prompt
from warmserve.config import ModelSpec
from warmserve.errors import InvalidRequest
from warmserve.generation import ChatMessage, GenerationRequest, ReasoningRequest
from warmserve.model_options import ReasoningOptions
from warmserve.reasoning import ReasoningSplitter, ReasoningStart, split_whole

THINK = ReasoningStart("<think>", "</think>", "start")
INSIDE = ReasoningStart("<think>", "</think>", "thinking")
OUTPUT = "<think>\nLet me see: 2 < 3, so </thi is not it.\n</think>\n\nThe answer is <think> 3."


def fed(start: ReasoningStart, chunks: list[str]) -> tuple[str, str]:
    splitter = ReasoningSplitter(start)
    pieces = [piece for chunk in chunks for piece in splitter.feed(chunk)] + splitter.finish()
    kinds = [kind for kind, _ in pieces]
    assert kinds == sorted(kinds, key=lambda kind: kind == "content"), "all thinking comes before the answer"
    return (
        "".join(text for kind, text in pieces if kind == "reasoning"),
        "".join(text for kind, text in pieces if kind == "content"),
    )


def test_markers_split_anywhere_across_chunks_give_the_same_split():
    whole = fed(THINK, [OUTPUT])
    assert whole == ("Let me see: 2 < 3, so </thi is not it.", "The answer is <think> 3.")
    for cut in range(1, len(OUTPUT)):
        assert fed(THINK, [OUTPUT[:cut], OUTPUT[cut:]]) == whole, cut
    for size in (1, 2, 3, 5):
        assert fed(THINK, [OUTPUT[i : i + size] for i in range(0, len(OUTPUT), size)]) == whole


def test_a_prompt_that_opened_the_block_starts_the_output_inside_it():
    text = "First, think.\n</think>\nDone."
    assert fed(INSIDE, list(text)) == ("First, think.", "Done.")
    assert split_whole(text, INSIDE) == ("First, think.", "Done.")


def test_only_a_block_at_the_start_counts_and_plain_answers_pass_untouched():
    assert fed(THINK, ["  Hello <think>x</think>"]) == ("", "  Hello <think>x</think>")
    assert fed(THINK, ["<thin", "king>"]) == ("", "<thinking>")  # a partial marker that was not one
    assert split_whole("No thinking here.", THINK) == (None, "No thinking here.")
    assert split_whole("No thinking here.", None) == (None, "No thinking here.")


def test_a_cut_off_block_is_all_thinking_and_no_answer():
    assert fed(THINK, ["<think>still going </th"]) == ("still going </th", "")
    assert split_whole("<think>still going", THINK) == ("still going", "")


def test_an_answer_phase_leaves_the_text_whole():
    answer = ReasoningStart("<think>", "</think>", "answer")
    assert fed(answer, ["<think>a</think>b"]) == ("", "<think>a</think>b")


def test_markers_come_from_the_spec_or_the_template_and_parsing_can_be_off():
    template = "{% if enable_thinking %}<think>{% endif %}{{ message.content.split('</think>')[-1] }}"
    found = ReasoningModel.detect(ReasoningOptions(), template, no_tokens)
    assert found == ReasoningModel("<think>", "</think>", frozenset({"enable_thinking"}))
    assert ReasoningModel.detect(ReasoningOptions(), "{{ messages }}", no_tokens) is None
    assert ReasoningModel.detect(ReasoningOptions(parse=False), template, no_tokens) is None
    named = ReasoningModel.detect(ReasoningOptions(markers=("[T]", "[/T]")), "{{ reasoning_effort }}", no_tokens)
    assert named == ReasoningModel("[T]", "[/T]", frozenset({"reasoning_effort"}))
    # A template that lost the markers, over a vocabulary that has them as tokens of their own.
    special = {"[THINK]", "[/THINK]"}
    assert ReasoningModel.detect(ReasoningOptions(), "{{ messages }}", special.__contains__) == ReasoningModel(
        "[THINK]", "[/THINK]"
    )


def no_tokens(text: str) -> bool:
    return False


def chat_request(reasoning: ReasoningRequest | None = None, kwargs: str | None = None) -> GenerationRequest:
    return GenerationRequest(messages=(ChatMessage("user", "hi"),), reasoning=reasoning, template_kwargs=kwargs)


def test_a_model_that_cannot_think_refuses_thinking_naming_the_parameter():
    with pytest.raises(InvalidRequest) as caught:
        chat_plan(None, chat_request(ReasoningRequest(512, "low", param="reasoning.effort")), None)
    assert caught.value.param == "reasoning.effort"
    assert chat_plan(None, chat_request(ReasoningRequest(0, "none")), None).budget is None  # "none" asks nothing


def test_the_template_switch_follows_the_request_and_chat_template_kwargs_win():
    model = ReasoningModel("<think>", "</think>", frozenset({"enable_thinking", "reasoning_effort"}))
    plan = chat_plan(model, chat_request(ReasoningRequest(0, "none")), 100)
    assert (plan.variables, plan.budget) == ({"enable_thinking": False, "reasoning_effort": "none"}, 0)
    assert chat_plan(model, chat_request(), 100).variables == {}  # the template's own default
    assert chat_plan(model, chat_request(), 100).budget == 100  # the spec's default budget
    plan = chat_plan(model, chat_request(ReasoningRequest(512, "low"), '{"enable_thinking": false, "x": 1}'), None)
    assert (plan.variables, plan.budget) == ({"enable_thinking": False, "reasoning_effort": "low", "x": 1}, 0)


def test_the_prompt_is_closed_opened_or_left_as_the_request_needs():
    model = ReasoningModel("<think>", "</think>")
    text, start = shape_prompt(model, "<|assistant|>\n", 0, constrained=False)
    assert (text, start.phase) == ("<|assistant|>\n<think>\n\n</think>\n\n", "answer")
    text, start = shape_prompt(model, "<|assistant|>\n<think>\n", 0, constrained=False)
    assert (text, start.phase) == ("<|assistant|>\n<think>\n\n</think>\n\n", "answer")
    assert shape_prompt(model, "<|assistant|>\n<think>\n", None, constrained=False)[1].phase == "thinking"
    text, start = shape_prompt(model, "<|assistant|>\n", 50, constrained=True)
    assert (text, start.phase) == ("<|assistant|>\n<think>\n", "thinking")
    assert shape_prompt(model, "<|assistant|>\n", 50, constrained=False) == ("<|assistant|>\n", THINK)


def letters(text: str) -> list[tuple[int, bytes]]:
    return [(ord(c), c.encode()) for c in text]


def test_a_spent_budget_forces_the_close_and_counts_it_as_thinking():
    close = [ord(c) for c in "\n</think>\n\n"]
    thinking = Thinking(INSIDE, 3, close, answer_required=True)
    for token, piece in letters("abc"):
        assert thinking.forced() is None
        thinking.accept(token, piece)
    forced = []
    while (token := thinking.forced()) is not None:
        assert thinking.inside  # a grammar waits until the close is through
        forced.append(token)
        thinking.accept(token, chr(token).encode())
    assert forced == close
    assert not thinking.inside
    assert thinking.reasoning_tokens == 3 + len("\n</think>")


def test_an_end_inside_the_block_becomes_its_close_only_when_an_answer_must_follow():
    close = [ord(c) for c in "\n</think>\n\n"]
    assert Thinking(INSIDE, None, close, answer_required=False).instead_of_end() is None
    required = Thinking(INSIDE, None, close, answer_required=True)
    assert required.instead_of_end() == close[0]
    assert required.forced() == close[0]


def test_specs_bound_their_budgets_and_check_their_template(tmp_path):
    options = ReasoningOptions(effort_budgets={"low": 64})
    assert options.effort_budgets["low"] == 64
    assert options.effort_budgets["none"] == 0
    with pytest.raises(ValueError, match="effort 'high'"):
        ReasoningOptions(effort_budgets={"high": -1})
    with pytest.raises(ValueError, match="not found"):
        ModelSpec(chat_template=str(tmp_path / "missing.jinja"))
    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for m in messages %}{{ m.content }")
    with pytest.raises(ValueError, match="does not parse"):
        ModelSpec(chat_template=str(broken))

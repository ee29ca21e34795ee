from warmserve.backends.text import OutputTracker, StopMatcher
from warmserve.generation import Finished, TextDelta, TokenLogprob


def feed_all(matcher: StopMatcher, pieces: list[str]) -> tuple[str, bool]:
    out = []
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        out.append(text)
        if stopped:
            return "".join(out), True
    return "".join(out) + matcher.flush(), False


def test_stop_string_split_across_pieces_is_cut_and_never_emitted():
    assert feed_all(StopMatcher(("END",)), ["hello E", "N", "D more"]) == ("hello ", True)


def test_text_that_only_looks_like_a_stop_prefix_is_released():
    matcher = StopMatcher(("END",))
    assert matcher.feed("hello E") == ("hello ", False)
    assert matcher.feed("xit") == ("Exit", False)


def test_earliest_of_several_stops_wins():
    assert feed_all(StopMatcher(("b", "a")), ["xxabc"]) == ("xx", True)


def test_without_stops_text_passes_straight_through():
    assert StopMatcher(()).feed("abc") == ("abc", False)


def test_tracker_holds_back_incomplete_utf8_until_it_completes():
    tracker = OutputTracker(prompt_tokens=3, max_tokens=10, stop=())
    euro = "€".encode()
    assert tracker.push(euro[:1]) == []
    assert tracker.push(euro[1:]) == [TextDelta("€")]
    assert tracker.completion_tokens == 2


def test_tracker_finishes_with_length_at_the_budget_and_counts_every_token():
    tracker = OutputTracker(prompt_tokens=3, max_tokens=2, stop=())
    assert tracker.push(b"a") == [TextDelta("a")]
    assert tracker.push(b"b") == [TextDelta("b"), Finished("length", 3, 2)]


def test_tracker_finishes_with_stop_on_a_stop_string():
    tracker = OutputTracker(prompt_tokens=1, max_tokens=10, stop=("\n",))
    assert tracker.push(b"ok") == [TextDelta("ok")]
    assert tracker.push(b"\nmore") == [Finished("stop", 1, 2, stop_sequence="\n")]


def test_the_finish_names_the_earliest_stop_string_found():
    tracker = OutputTracker(prompt_tokens=1, max_tokens=10, stop=("b", "a"))
    assert tracker.push(b"xxabc") == [TextDelta("xx"), Finished("stop", 1, 1, stop_sequence="a")]


def test_end_of_generation_flushes_held_text():
    tracker = OutputTracker(prompt_tokens=1, max_tokens=10, stop=("STOP",))
    assert tracker.push(b"ST") == []
    assert tracker.end_of_generation() == [TextDelta("ST"), Finished("stop", 1, 1)]


def test_logprobs_of_a_split_character_leave_with_the_text_that_completes_it():
    tracker = OutputTracker(prompt_tokens=1, max_tokens=10, stop=(), with_logprobs=True)
    euro = "€".encode()
    first, second = TokenLogprob(euro[:2], -1.0), TokenLogprob(euro[2:], -2.0)
    assert tracker.push(euro[:2], first) == []  # nothing to show yet: the logprob waits too
    assert tracker.push(euro[2:], second) == [TextDelta("€", (first, second))]


def test_logprobs_of_tokens_inside_a_stop_string_are_dropped():
    tracker = OutputTracker(prompt_tokens=1, max_tokens=10, stop=("STOP",), with_logprobs=True)
    hi, stop = TokenLogprob(b"hi ", -0.5), TokenLogprob(b"STOP", -0.1)
    assert tracker.push(b"hi ", hi) == [TextDelta("hi ", (hi,))]
    [done] = tracker.push(b"STOP", stop)
    assert isinstance(done, Finished)
    assert done.finish_reason == "stop"

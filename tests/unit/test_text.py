import itertools

import pytest

from warmserve.backends.text import OutputTracker, StopMatcher
from warmserve.generation import Continuation, Drawn, Finished, GenerationEvent, TextDelta, TokenLogprob


def shown(events: list[GenerationEvent]) -> list[GenerationEvent]:
    """What reaches the client: everything but the tokens drawn (the pool keeps those)."""
    return [event for event in events if not isinstance(event, Drawn)]


def push(tracker: OutputTracker, piece: bytes, logprob: TokenLogprob | None = None) -> list[GenerationEvent]:
    return shown(tracker.push(len(piece), piece, logprob))


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
    assert push(tracker, euro[:1]) == []
    assert push(tracker, euro[1:]) == [TextDelta("€")]
    assert tracker.completion_tokens == 2


def test_tracker_finishes_with_length_at_the_budget_and_counts_every_token():
    tracker = OutputTracker(prompt_tokens=3, max_tokens=2, stop=())
    assert push(tracker, b"a") == [TextDelta("a")]
    assert push(tracker, b"b") == [TextDelta("b"), Finished("length", 3, 2)]


def test_tracker_finishes_with_stop_on_a_stop_string():
    tracker = OutputTracker(prompt_tokens=1, max_tokens=10, stop=("\n",))
    assert push(tracker, b"ok") == [TextDelta("ok")]
    assert push(tracker, b"\nmore") == [Finished("stop", 1, 2, stop_sequence="\n")]


def test_the_finish_names_the_earliest_stop_string_found():
    tracker = OutputTracker(prompt_tokens=1, max_tokens=10, stop=("b", "a"))
    assert push(tracker, b"xxabc") == [TextDelta("xx"), Finished("stop", 1, 1, stop_sequence="a")]


def test_end_of_generation_flushes_held_text():
    tracker = OutputTracker(prompt_tokens=1, max_tokens=10, stop=("STOP",))
    assert push(tracker, b"ST") == []
    assert tracker.end_of_generation() == [TextDelta("ST"), Finished("stop", 1, 1)]


def test_logprobs_of_a_split_character_leave_with_the_text_that_completes_it():
    tracker = OutputTracker(prompt_tokens=1, max_tokens=10, stop=(), with_logprobs=True)
    euro = "€".encode()
    first, second = TokenLogprob(euro[:2], -1.0), TokenLogprob(euro[2:], -2.0)
    assert push(tracker, euro[:2], first) == []  # nothing to show yet: the logprob waits too
    assert push(tracker, euro[2:], second) == [TextDelta("€", (first, second))]


def test_logprobs_of_tokens_inside_a_stop_string_are_dropped():
    tracker = OutputTracker(prompt_tokens=1, max_tokens=10, stop=("STOP",), with_logprobs=True)
    hi, stop = TokenLogprob(b"hi ", -0.5), TokenLogprob(b"STOP", -0.1)
    assert push(tracker, b"hi ", hi) == [TextDelta("hi ", (hi,))]
    [done] = push(tracker, b"STOP", stop)
    assert isinstance(done, Finished)
    assert done.finish_reason == "stop"


def test_every_token_that_does_not_end_the_output_is_announced_before_its_text():
    tracker = OutputTracker(prompt_tokens=1, max_tokens=3, stop=())
    assert tracker.push(7, b"a") == [Drawn(7), TextDelta("a")]
    assert tracker.push(8, b"b") == [Drawn(8), TextDelta("b")]
    assert tracker.push(9, b"c") == [TextDelta("c"), Finished("length", 1, 3)]  # the last one needs no resume


PIECES = [b"Hi", b" \xe2", b"\x82\xac", b" S", b"TO", b"x", b" and", b" more", b" ST", b"OP", b" after"]


def run(tracker: OutputTracker, pieces: list[bytes], start: int = 0) -> list[GenerationEvent]:
    events: list[GenerationEvent] = []
    for index, piece in enumerate(pieces[start:], start):
        logprob = TokenLogprob(piece, -float(index)) if tracker.with_logprobs else None
        events += tracker.push(index, piece, logprob)
        if events and isinstance(events[-1], Finished):
            break
    return events


def text_and_logprobs(events: list[GenerationEvent]) -> tuple[str, tuple[TokenLogprob, ...]]:
    deltas = [event for event in events if isinstance(event, TextDelta)]
    return "".join(d.text for d in deltas), tuple(lp for d in deltas for lp in d.logprobs)


@pytest.mark.parametrize("with_logprobs", [False, True])
def test_a_replay_cut_anywhere_continues_with_exactly_the_text_the_client_has_not_had(with_logprobs):
    """Split characters, a held-back stop prefix and logprobs: cut the run after any event, resume from
    the tokens announced so far, and the client's text and logprobs equal the uncut run's."""

    def tracker() -> OutputTracker:
        return OutputTracker(prompt_tokens=4, max_tokens=50, stop=("STOP",), with_logprobs=with_logprobs)

    whole = run(tracker(), PIECES)
    assert isinstance(whole[-1], Finished)
    for cut in range(len(whole)):
        before = whole[:cut]
        drawn = [event for event in before if isinstance(event, Drawn)]
        seen, seen_logprobs = text_and_logprobs(before)
        resume = Continuation(
            tokens=tuple(d.token for d in drawn),
            logprobs=tuple(d.logprob for d in drawn if d.logprob is not None),
            shown_chars=len(seen),
            shown_logprobs=len(seen_logprobs),
        )
        again = tracker()
        again.replay(resume, [PIECES[d.token] for d in drawn])
        after = run(again, PIECES, start=len(drawn))
        assert text_and_logprobs(before + after) == text_and_logprobs(whole), cut
        assert shown(after)[-1] == whole[-1]  # the same finish, with the same token count
        assert not any(isinstance(e, Drawn) and e.token < len(drawn) for e in after)


def test_a_replay_of_a_held_back_answer_sends_all_its_text():
    """A non-streamed request's text never left the dead worker: shown_chars 0 gets it all again."""
    first = OutputTracker(prompt_tokens=1, max_tokens=10, stop=())
    for token, piece in zip(itertools.count(), (b"one", b" two")):
        first.push(token, piece)
    again = OutputTracker(prompt_tokens=1, max_tokens=10, stop=())
    again.replay(Continuation(tokens=(0, 1)), [b"one", b" two"])
    assert shown(again.push(2, b" three")) == [TextDelta("one two"), TextDelta(" three")]
    assert again.completion_tokens == 3

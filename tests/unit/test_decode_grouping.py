"""Choosing between one batched decode call and one call per sequence, from measured costs."""

from warmserve.backends.llama.decode_grouping import DecodeGrouping


def test_both_ways_are_measured_before_the_cheaper_one_is_chosen():
    grouping = DecodeGrouping()
    assert grouping.split(1) is False  # one sequence: nothing to choose
    assert grouping.split(2) is False  # batched cost unknown: batch, and measure it
    grouping.record(2, False, 0.017)
    assert grouping.split(2) is True  # one call each unknown: split, and measure it
    grouping.record(2, True, 0.0136)
    assert grouping.split(2) is True  # 13.6 ms beats 17 ms
    grouping.record(8, False, 0.046)
    grouping.record(8, True, 0.055)
    assert grouping.split(8) is False  # each number of sequences has its own costs


def test_the_way_not_taken_is_measured_again_now_and_then_when_it_is_close():
    grouping = DecodeGrouping()
    grouping.record(2, False, 0.017)
    grouping.record(2, True, 0.0136)
    grouping.record(4, False, 0.100)
    grouping.record(4, True, 0.027)  # far cheaper: batching 4 is never tried again
    choices = [grouping.split(2) for _ in range(64)]
    assert choices.count(False) == 2  # every 32nd step batches again, to follow changes
    assert all(grouping.split(4) for _ in range(64))


def test_measurements_are_averaged_so_one_slow_step_does_not_flip_the_choice():
    grouping = DecodeGrouping()
    grouping.record(2, False, 0.017)
    grouping.record(2, True, 0.0136)
    grouping.record(2, True, 0.030)  # one step disturbed by another process
    assert grouping.split(2) is True  # average 16.9 ms, still below 17

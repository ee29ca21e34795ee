"""Choosing how a decode step runs (batched or one call per sequence, own or lent threads) from measured costs."""

from warmserve.backends.llama.decode_grouping import DecodeGrouping, DecodeWay

OWN = (1,)
LENT = (1, 2)


def test_every_way_is_measured_before_the_cheapest_is_chosen():
    grouping = DecodeGrouping()
    assert grouping.choose(1, OWN) == DecodeWay(False, 1)  # one sequence on its own threads: nothing to choose
    assert grouping.choose(2, OWN) == DecodeWay(False, 1)  # batched cost unknown: batch, and measure it
    grouping.record(2, DecodeWay(False, 1), 0.017)
    assert grouping.choose(2, OWN) == DecodeWay(True, 1)  # one call each unknown: split, and measure it
    grouping.record(2, DecodeWay(True, 1), 0.0136)
    assert grouping.choose(2, OWN) == DecodeWay(True, 1)  # 13.6 ms beats 17 ms
    grouping.record(8, DecodeWay(False, 1), 0.046)
    grouping.record(8, DecodeWay(True, 1), 0.055)
    assert grouping.choose(8, OWN) == DecodeWay(False, 1)  # each number of sequences has its own costs


def test_lent_threads_are_measured_then_used_only_where_they_are_faster():
    grouping = DecodeGrouping()
    grouping.record(1, DecodeWay(False, 1), 0.020)
    assert grouping.choose(1, LENT) == DecodeWay(False, 2)  # a peer lends its core: measure decoding on both
    grouping.record(1, DecodeWay(False, 2), 0.013)
    assert grouping.choose(1, LENT) == DecodeWay(False, 2)  # 13 ms beats 20: a lone stream decodes on both
    assert grouping.choose(1, OWN) == DecodeWay(False, 1)  # the core taken back: own threads at once
    for way, seconds in ((DecodeWay(False, 1), 0.030), (DecodeWay(True, 1), 0.025)):
        grouping.record(2, way, seconds)
    for way, seconds in ((DecodeWay(False, 2), 0.031), (DecodeWay(True, 2), 0.040)):
        grouping.record(2, way, seconds)
    assert grouping.choose(2, LENT) == DecodeWay(True, 1)  # here the second thread does not pay


def test_the_runner_up_is_measured_again_now_and_then_when_it_is_close():
    grouping = DecodeGrouping()
    grouping.record(2, DecodeWay(False, 1), 0.017)
    grouping.record(2, DecodeWay(True, 1), 0.0136)
    grouping.record(4, DecodeWay(False, 1), 0.100)
    grouping.record(4, DecodeWay(True, 1), 0.027)  # far cheaper: batching 4 is never tried again
    choices = [grouping.choose(2, OWN) for _ in range(64)]
    assert choices.count(DecodeWay(False, 1)) == 2  # every 32nd step batches again, to follow changes
    assert all(grouping.choose(4, OWN) == DecodeWay(True, 1) for _ in range(64))


def test_measurements_are_averaged_so_one_slow_step_does_not_flip_the_choice():
    grouping = DecodeGrouping()
    grouping.record(2, DecodeWay(False, 1), 0.017)
    grouping.record(2, DecodeWay(True, 1), 0.0136)
    grouping.record(2, DecodeWay(True, 1), 0.030)  # one step disturbed by another process
    assert grouping.choose(2, OWN) == DecodeWay(True, 1)  # average 16.9 ms, still below 17

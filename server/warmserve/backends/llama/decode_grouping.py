"""How a step of one-token decodes runs on a CPU: batched or one call per sequence, on how many threads.

Batching is the rule on a GPU, but on a CPU a batch can cost more than its sequences alone (measured
for a few sequences of SmolLM2 on one thread: README, benchmarks/decode_step_cost.py). The culprit is the
output layer: with two or more output rows llama.cpp computes it with a matrix kernel (llamafile's
tinyBLAS) that is slower at this size than its one-row kernel. Likewise a second thread on a core an
idle peer lends is worth 1.5x on one machine and a loss on another, where it mostly waits for the
API process and the clients on the same cores. Both depend on the model, the CPU and what else runs,
so every way is measured for each number of sequences as the engine runs, and the cheapest wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

_SMOOTHING = 0.2  # weight of a new measurement in the running average
_EXPLORE_EVERY = 32  # steps between re-measuring the runner-up way...
_EXPLORE_WITHIN = 1.5  # ...when its estimate is within this factor of the chosen way's


class DecodeWay(NamedTuple):
    split: bool  # one decode call per sequence (True) or one call for all (False)
    threads: int


class DecodeGrouping:
    """Running averages of the seconds a decode step of n one-token sequences takes, each way."""

    def __init__(self) -> None:
        self._seconds: dict[tuple[int, DecodeWay], float] = {}  # (sequences, way) -> running average
        self._steps = 0

    def choose(self, sequences: int, threads: Sequence[int]) -> DecodeWay:
        """The way to decode these sequences, given the thread counts available now (own first).

        A way never measured is tried first (batched before split, own threads before more);
        then the cheapest, with the runner-up measured again every so often while it is close,
        to follow a machine whose load changes.
        """
        splits = (False, True) if sequences > 1 else (False,)
        ways = [DecodeWay(split, count) for count in threads for split in splits]
        for way in ways:
            if (sequences, way) not in self._seconds:
                return way
        ranked = sorted(ways, key=lambda way: self._seconds[(sequences, way)])
        if len(ranked) == 1:
            return ranked[0]
        self._steps += 1
        best, runner_up = ranked[0], ranked[1]
        close = self._seconds[(sequences, runner_up)] < self._seconds[(sequences, best)] * _EXPLORE_WITHIN
        return runner_up if self._steps % _EXPLORE_EVERY == 0 and close else best

    def record(self, sequences: int, way: DecodeWay, seconds: float) -> None:
        """A decode step of `sequences` one-token sequences, done `way`, spent `seconds` in llama.cpp."""
        key = (sequences, way)
        old = self._seconds.get(key)
        self._seconds[key] = seconds if old is None else old + _SMOOTHING * (seconds - old)

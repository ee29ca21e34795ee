"""Whether one-token decode steps of several sequences run as one llama_decode call or one call each.

Batching is the rule on a GPU, but on a CPU a batch can cost more than its sequences alone (measured
for a few sequences of SmolLM2 on one thread: README, benchmarks/decode_step_cost.py). The culprit is the
output layer: with two or more output rows llama.cpp computes it with a matrix kernel (llamafile's
tinyBLAS) that is slower at this size than its one-row kernel. The crossover depends on the model,
the CPU, the threads and what else runs (one call per sequence reads the weights once per sequence),
so both ways are measured for each number of sequences as the engine runs, and the cheaper wins.
"""

from __future__ import annotations

_SMOOTHING = 0.2  # weight of a new measurement in the running average
_EXPLORE_EVERY = 32  # steps between re-measuring the way not taken...
_EXPLORE_WITHIN = 1.5  # ...when its estimate is within this factor of the chosen way's


class DecodeGrouping:
    """Running averages of the seconds a decode step of n one-token sequences takes, both ways."""

    def __init__(self) -> None:
        self._seconds: dict[tuple[int, bool], float] = {}  # (sequences, split) -> running average
        self._steps = 0

    def split(self, sequences: int) -> bool:
        """Decode these sequences one call each (True) or in one call (False)?"""
        if sequences < 2:
            return False
        batched, alone = self._seconds.get((sequences, False)), self._seconds.get((sequences, True))
        if batched is None or alone is None:
            return batched is not None  # measure whichever is unknown, batched first
        split = alone < batched
        self._steps += 1
        chosen, other = (alone, batched) if split else (batched, alone)
        if self._steps % _EXPLORE_EVERY == 0 and other < chosen * _EXPLORE_WITHIN:
            return not split
        return split

    def record(self, sequences: int, split: bool, seconds: float) -> None:
        """A decode step of `sequences` one-token sequences, split or not, spent `seconds` in llama.cpp."""
        key = (sequences, split)
        old = self._seconds.get(key)
        self._seconds[key] = seconds if old is None else old + _SMOOTHING * (seconds - old)

"""Log probabilities of sampled tokens, shared by every engine that has a logits row.

OpenAI reports the model's own distribution: log-softmax of the raw logits, before
temperature, penalties or logit bias change what is sampled.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from warmserve.generation import TokenLogprob


def top_logprobs(logits: npt.NDArray[np.floating], token: int, top: int, piece: Callable[[int], bytes]) -> TokenLogprob:
    """`token`'s log probability and the `top` most likely tokens (best first) over one row."""
    row = logits.astype(np.float64, copy=False)
    peak = float(row.max())
    log_total = peak + float(np.log(np.exp(row - peak).sum()))
    alternatives: tuple[tuple[bytes, float], ...] = ()
    if top > 0:
        best = np.argpartition(row, -top)[-top:]
        best = best[np.argsort(-row[best], kind="stable")]
        alternatives = tuple((piece(int(t)), float(row[t]) - log_total) for t in best)
    return TokenLogprob(piece(token), float(row[token]) - log_total, alternatives)

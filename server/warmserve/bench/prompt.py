"""Deterministic prompts of a chosen approximate length.

Short, common lowercase words with little punctuation come to about one token per
word in the usual BPE vocabularies, so N words are about N tokens; the server's own
count (usage.prompt_tokens) is recorded with the results. Each prompt starts with
its request number so that no server answers it from a prompt cache left by the
previous request: the benchmark measures cold prompts.
"""

from __future__ import annotations

from itertools import cycle, islice

_PASSAGE = (
    "the old keeper of the light walked up the hill each night to watch the sea and the "
    "ships that came in from the north he kept a small book where he wrote down the names "
    "of the boats the colour of the sky and the sound of the wind as it moved over the grass "
    "and the stone walls near his house in the morning he would read it all again and "
    "wonder where each ship had gone and who had been on board"
)


def prompt_text(number: int, words: int) -> str:
    """About `words` tokens of fixed text, headed by `number`."""
    head = ["request", str(number)]
    return " ".join(head + list(islice(cycle(_PASSAGE.split()), max(0, words - len(head)))))

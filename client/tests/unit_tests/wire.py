"""What the warmserve server accepts in a request body (its `protocol.py`, as of this client).

Any other parameter is a 400 `unsupported_parameter`, so the default requests must stay inside this.
"""

from typing import Any

SHARED = {
    "model",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "stream",
    "stream_options",
    "user",
    "n",
    "logit_bias",
}
CHAT = SHARED | {"messages", "max_tokens", "max_completion_tokens", "logprobs", "top_logprobs"}
COMPLETIONS = SHARED | {"prompt", "max_tokens", "logprobs", "echo", "suffix", "best_of"}
# Accepted only with the value that means OpenAI's default behaviour.
NEUTRAL: dict[str, Any] = {}


def unsupported(body: dict[str, Any], accepted: set[str]) -> list[str]:
    return [
        name
        for name, value in body.items()
        if name not in accepted and value is not None and not (name in NEUTRAL and NEUTRAL[name] == value)
    ]

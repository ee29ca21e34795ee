"""Chat prompts rendered with the model's own Jinja chat template.

The template comes with the weights (GGUF metadata `tokenizer.chat_template`), and we
render it the way transformers does, because llama.cpp's built-in template matcher
drops parts of some templates (SmolLM2's default system prompt, for one).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from warmserve.backends.tool_prompt import template_inputs
from warmserve.errors import InvalidRequest
from warmserve.generation import ChatMessage

# Used when the weights carry no template: ChatML, the most common format.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _raise_exception(message: str) -> None:
    raise InvalidRequest(f"The model's chat template rejected the messages: {message}", param="messages")


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)


class ChatTemplate:
    def __init__(self, source: str | None, bos_token: str, eos_token: str) -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        self.source = source or FALLBACK_TEMPLATE
        self._template = env.from_string(self.source)
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(self, messages: tuple[ChatMessage, ...], tools_json: str | None = None) -> str:
        """The prompt text that asks the model for the next assistant turn (tools: see tool_prompt)."""
        rendered, tools = template_inputs(messages, tools_json, self.source)
        extra = {} if tools is None else {"tools": tools}
        try:
            return self._template.render(
                messages=rendered,
                **extra,
                add_generation_prompt=True,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except jinja2.TemplateError as exc:
            raise InvalidRequest(f"The model's chat template failed: {exc}", param="messages") from exc

"""Chat prompts rendered with the model's own Jinja chat template.

The template comes with the weights (GGUF metadata `tokenizer.chat_template`), and we
render it the way transformers does, because llama.cpp's built-in template matcher
drops parts of some templates (SmolLM2's default system prompt, for one).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

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

    def render(
        self, messages: tuple[ChatMessage, ...], tools_json: str | None = None, variables: dict[str, Any] | None = None
    ) -> str:
        """The prompt text that asks the model for the next assistant turn (tools: see tool_prompt).

        `variables` (chat_template_kwargs, a thinking switch) may not replace what the render sets itself.
        """
        rendered, tools = template_inputs(messages, tools_json, self.source)
        own: dict[str, Any] = {
            "messages": rendered,
            "add_generation_prompt": True,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        if tools is not None:
            own["tools"] = tools
        try:
            return self._template.render(**{**(variables or {}), **own})
        except InvalidRequest:
            raise
        except Exception as exc:  # any failure inside the template is the request's (or the template's) fault
            raise template_failed(exc) from exc


def template_failed(exc: Exception) -> InvalidRequest:
    """A template that fails to render: a 400 with the template's own error."""
    return InvalidRequest(f"The model's chat template failed to render: {type(exc).__name__}: {exc}", param="messages")

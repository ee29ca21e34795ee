"""A Hugging Face tokenizer and its chat template, as the shared request flow (backends/tokens.py) uses them."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedTokenizerBase

from warmserve.backends.chat_template import ChatTemplate, template_failed
from warmserve.backends.tokens import Vocabulary
from warmserve.backends.tool_prompt import template_inputs
from warmserve.errors import InvalidRequest
from warmserve.generation import ChatMessage

# Prefix, suffix and middle tokens, as StarCoder / Qwen-style and Code Llama-style vocabularies name them.
_FIM_NAMES = (
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    ("<PRE>", "<SUF>", "<MID>"),
)


class HFVocabulary(Vocabulary):
    def __init__(self, tokenizer: PreTrainedTokenizerBase, size: int, template: str | None = None) -> None:
        """`template`: the spec's override of the tokenizer's chat template."""
        self._tokenizer = tokenizer
        self.size = size
        self.fim = _find_fim_tokens(tokenizer)
        own = tokenizer.chat_template
        self._source: str | None = template or (own if isinstance(own, str) else None)
        self._fallback_template = None if self._source else ChatTemplate(None, "", "")

    def encode(self, text: str, special: bool) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=special)["input_ids"])

    def decode(self, tokens: list[int]) -> str:
        return str(self._tokenizer.decode(tokens, skip_special_tokens=False))

    @property
    def template_source(self) -> str:
        return self._fallback_template.source if self._fallback_template is not None else str(self._source)

    def render(self, messages: tuple[ChatMessage, ...], tools_json: str | None, variables: dict[str, Any]) -> str:
        if self._fallback_template is not None:
            return self._fallback_template.render(messages, tools_json, variables)
        rendered, tools = template_inputs(messages, tools_json, self._source)
        template_tools: Any = tools
        reserved = {"conversation", "tools", "chat_template", "add_generation_prompt", "tokenize"}
        extra = {name: value for name, value in variables.items() if name not in reserved}
        try:
            return str(
                self._tokenizer.apply_chat_template(
                    rendered,
                    tools=template_tools,
                    chat_template=self._source,
                    add_generation_prompt=True,
                    tokenize=False,
                    **extra,
                )
            )
        except InvalidRequest:
            raise
        except Exception as exc:  # template errors are the request's fault
            raise template_failed(exc) from exc

    def encode_chat(self, text: str) -> list[int]:
        return self.encode(text, False)


def _find_fim_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[int, int, int] | None:
    """The first naming convention for fill-in-the-middle tokens this vocabulary has."""
    vocab = tokenizer.get_vocab()
    for names in _FIM_NAMES:
        ids = [vocab.get(name) for name in names]
        if all(i is not None for i in ids):
            return ids[0], ids[1], ids[2]  # type: ignore[return-value]
    return None

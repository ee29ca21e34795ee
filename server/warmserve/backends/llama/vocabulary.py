"""A GGUF model's tokenizer and chat template, as the shared request flow (backends/tokens.py) uses them."""

from __future__ import annotations

from typing import Any

from warmserve.backends.chat_template import ChatTemplate
from warmserve.backends.llama.native import NativeModel
from warmserve.backends.tokens import Vocabulary
from warmserve.generation import ChatMessage


class LlamaVocabulary(Vocabulary):
    def __init__(self, model: NativeModel, template: str | None = None) -> None:
        """`template`: the spec's override of the model's chat template."""
        vocab = self._vocab = model.vocab
        self.size = vocab.size
        self.fim = vocab.fim_tokens()
        self.fim_head = (vocab.bos,) if vocab.adds_bos else ()
        self._template = ChatTemplate(
            template or model.chat_template(), vocab.special_text(vocab.bos), vocab.special_text(vocab.eos)
        )

    def encode(self, text: str, special: bool) -> list[int]:
        return self._vocab.tokenize(text, add_special=special)

    def decode(self, tokens: list[int]) -> str:
        return b"".join(self._vocab.piece(token, special=True) for token in tokens).decode("utf-8", errors="replace")

    @property
    def template_source(self) -> str:
        return self._template.source

    def render(self, messages: tuple[ChatMessage, ...], tools_json: str | None, variables: dict[str, Any]) -> str:
        return self._template.render(messages, tools_json, variables)

    def encode_chat(self, text: str) -> list[int]:
        # A template that writes the BOS token itself must not get a second one.
        bos = self._template.bos_token
        return self.encode(text, special=not (bos and text.startswith(bos)))

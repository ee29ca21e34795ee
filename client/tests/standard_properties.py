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
        return False  # the server answers 400 to `tools`

    @property
    def has_tool_choice(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False  # no `response_format` (json_schema) and no tools to build it from

    @property
    def supports_json_mode(self) -> bool:
        return False  # no `response_format: {"type": "json_object"}`

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

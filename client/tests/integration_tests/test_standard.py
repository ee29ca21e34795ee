"""LangChain's standard chat-model integration tests against the session's real warmserve server."""

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests

from tests.standard_properties import WarmServeChatFeatures


class TestChatWarmServeStandard(WarmServeChatFeatures, ChatModelIntegrationTests):
    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # Short, deterministic answers keep the suite fast on a CPU.
        return {"temperature": 0, "max_tokens": 48, "timeout": 120}

    @pytest.mark.xfail(
        reason="SmolLM2-135M does not copy the Japanese name it is asked for: the forced call is "
        "well-formed, but its argument holds other text (e.g. 'トラックバック') or repeats until max_tokens",
        strict=False,
    )
    def test_unicode_tool_call_integration(self, model: BaseChatModel) -> None:  # type: ignore[override]
        super().test_unicode_tool_call_integration(model)

    @pytest.mark.xfail(
        reason="tool_choice auto: SmolLM2-135M answers the weather question in prose instead of "
        "calling get_weather (the grammar allows either; the model does not choose the call)",
        strict=False,
    )
    @pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)

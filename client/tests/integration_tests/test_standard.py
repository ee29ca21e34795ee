"""LangChain's standard chat-model integration tests against the session's real warmserve server."""

from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests

from tests.standard_properties import WarmServeChatFeatures


class TestChatWarmServeStandard(WarmServeChatFeatures, ChatModelIntegrationTests):
    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # Short, deterministic answers keep the suite fast on a CPU.
        return {"temperature": 0, "max_tokens": 48, "timeout": 120}

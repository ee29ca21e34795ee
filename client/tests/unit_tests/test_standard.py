"""LangChain's standard chat-model unit tests (no network)."""

from langchain_tests.unit_tests import ChatModelUnitTests

from tests.standard_properties import MODEL, WarmServeChatFeatures


class TestChatWarmServeStandard(WarmServeChatFeatures, ChatModelUnitTests):
    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        return (
            {"WARMSERVE_API_KEY": "api_key", "WARMSERVE_BASE_URL": "http://warmserve.test:9000/v1"},
            {"model": MODEL},
            {"openai_api_key": "api_key", "openai_api_base": "http://warmserve.test:9000/v1"},
        )

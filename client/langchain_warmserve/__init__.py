"""LangChain models answered by a warmserve server: `ChatWarmServe` and `WarmServeLLM`."""

from langchain_warmserve._client import VERSION as __version__
from langchain_warmserve.chat_models import ChatWarmServe
from langchain_warmserve.errors import TokenizationUnsupportedError, WarmServeStreamError
from langchain_warmserve.llms import WarmServeLLM

__all__ = [
    "ChatWarmServe",
    "TokenizationUnsupportedError",
    "WarmServeLLM",
    "WarmServeStreamError",
    "__version__",
]

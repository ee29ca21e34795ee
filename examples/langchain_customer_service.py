"""The tutorial's customer-service question with today's LangChain, on a warm server.

"昨天有一个客户抱怨他买了花给女朋友之后，两天花就枯了，你说作为客服我应该怎么解释？"
(a customer complained that the flowers he bought for his girlfriend wilted within two days:
how should customer service explain it?) goes to ChatWarmServe as a chat with a
customer-service system prompt, and to WarmServeLLM as a completion prompt; `ainvoke` shows
that both run side by side against one server.

    make serve                              # in another terminal
    .venv/bin/python examples/langchain_customer_service.py [--question ...] [--base-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_warmserve import ChatWarmServe, WarmServeLLM

QUESTION = "昨天有一个客户抱怨他买了花给女朋友之后，两天花就枯了，你说作为客服我应该怎么解释？"
SYSTEM = "You are the customer-service lead of a flower shop. Answer politely and practically."


async def answer(question: str, server: dict[str, Any]) -> tuple[str, str]:
    chat_chain = (
        ChatPromptTemplate.from_messages([("system", SYSTEM), ("human", "{question}")])
        | ChatWarmServe(**server, max_tokens=128, temperature=0.3, seed=1)
        | StrOutputParser()
    )
    llm_chain = (
        PromptTemplate.from_template(f"{SYSTEM}\nQuestion: {{question}}\nAnswer: ")
        | WarmServeLLM(**server, max_tokens=96, temperature=0.3, seed=1, stop=["\n\n"])
        | StrOutputParser()
    )
    chat_text, llm_text = await asyncio.gather(
        chat_chain.ainvoke({"question": question}), llm_chain.ainvoke({"question": question})
    )
    return chat_text, llm_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="default: $WARMSERVE_BASE_URL, else http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--question", default=QUESTION)
    args = parser.parse_args()
    server = {"model": args.model, "base_url": args.base_url} if args.base_url else {"model": args.model}
    chat_text, llm_text = asyncio.run(answer(args.question, server))
    print("ChatWarmServe:", chat_text.strip())
    print("WarmServeLLM:", llm_text.strip())


if __name__ == "__main__":
    main()

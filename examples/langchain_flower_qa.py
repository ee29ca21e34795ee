"""The tutorial's question-answer template with today's LangChain: `prompt | model`, no LLMChain.

The tutorial filled a PromptTemplate with "Rose is which type of flower?" and ran it through
`LLMChain(llm=HuggingFaceHub(...))`, or through a hand-written LLM class that loaded the model
again on every call. Here the same template is an LCEL chain in front of a warm warmserve
model, once as a text completion (WarmServeLLM) and once as a chat (ChatWarmServe).

    make serve                              # in another terminal
    .venv/bin/python examples/langchain_flower_qa.py [--question ...] [--base-url URL]
"""

from __future__ import annotations

import argparse

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_warmserve import ChatWarmServe, WarmServeLLM

TEMPLATE = "Question: {question}\nAnswer: "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="default: $WARMSERVE_BASE_URL, else http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--question", default="Rose is which type of flower?")
    args = parser.parse_args()
    server = {"model": args.model, "base_url": args.base_url} if args.base_url else {"model": args.model}

    completion = PromptTemplate.from_template(TEMPLATE) | WarmServeLLM(**server, max_tokens=48, temperature=0)
    print("WarmServeLLM:", (completion | StrOutputParser()).invoke({"question": args.question}).strip())

    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a botanist. Answer in one short sentence."), ("human", "{question}")]
    )
    chat = prompt | ChatWarmServe(**server, max_tokens=48, temperature=0) | StrOutputParser()
    print("ChatWarmServe:", chat.invoke({"question": args.question}).strip())


if __name__ == "__main__":
    main()

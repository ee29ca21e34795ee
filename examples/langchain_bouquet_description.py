"""The tutorial's bouquet-description template with today's LangChain, on a warm server.

The tutorial wrote product copy for "12支红玫瑰，搭配白色满天星和绿叶，包装在浪漫的红色纸中。"
(twelve red roses with white baby's breath and green leaves, wrapped in romantic red paper)
through a prompt template, an LLMChain and a model loaded in-process. Here the template feeds
warmserve's models through LCEL: a completion (WarmServeLLM, several bouquets in one batched
request) and a streamed chat answer (ChatWarmServe).

    make serve                              # in another terminal
    .venv/bin/python examples/langchain_bouquet_description.py [--bouquet ...] [--base-url URL]
"""

from __future__ import annotations

import argparse

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_warmserve import ChatWarmServe, WarmServeLLM

BOUQUET = "12支红玫瑰，搭配白色满天星和绿叶，包装在浪漫的红色纸中。"
TEMPLATE = "You are a florist writing product copy.\nBouquet: {bouquet}\nA short, warm description: "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="default: $WARMSERVE_BASE_URL, else http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--bouquet", default=BOUQUET)
    args = parser.parse_args()
    server = {"model": args.model, "base_url": args.base_url} if args.base_url else {"model": args.model}

    llm = WarmServeLLM(**server, max_tokens=64, temperature=0.7, seed=1, stop=["\n\n"])
    completion = PromptTemplate.from_template(TEMPLATE) | llm | StrOutputParser()
    bouquets = [args.bouquet, "Six white lilies with eucalyptus, tied with a linen ribbon."]
    for bouquet, text in zip(bouquets, completion.batch([{"bouquet": b} for b in bouquets]), strict=True):
        print(f"WarmServeLLM [{bouquet}]: {text.strip()}")

    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are a florist writing short, warm product copy."),
            ("human", "Describe this bouquet in two sentences: {bouquet}"),
        ]
    )
    chat = prompt | ChatWarmServe(**server, max_tokens=96, temperature=0.7, seed=1) | StrOutputParser()
    print("ChatWarmServe: ", end="", flush=True)
    for piece in chat.stream({"bouquet": args.bouquet}):
        print(piece, end="", flush=True)
    print()


if __name__ == "__main__":
    main()

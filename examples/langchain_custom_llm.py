"""The tutorial's custom-LLM program, done right: its old GGML model served warm, LangChain asking it.

The tutorial subclassed LangChain's `LLM` as `CustomLLM`, whose `_call` built
`Llama(model_path=".../llama-2-7b-chat.ggmlv3.q4_K_S.bin", n_threads=4)` (4 GB, loaded again on
every call) and asked it `f"Q: {prompt} A: "` with max_tokens=256. Today's llama-cpp-python refuses
that GGML file ("invalid magic"). warmserve converts it to GGUF once, into its cache, and keeps it
loaded; the custom class is then WarmServeLLM with the same prompt and llama-cpp-python's sampling
defaults the tutorial ran with (temperature 0.8, top_p 0.95, top_k 40, repeat penalty 1.1 over the
last 64 tokens):

    .venv/bin/warmserve serve --model llama-2-7b-chat.ggmlv3.q4_K_S.bin --served-model-name llama-2-7b-chat
    .venv/bin/python examples/langchain_custom_llm.py [--question ...] [--model NAME] [--base-url URL]
"""

from __future__ import annotations

import argparse

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_warmserve import WarmServeLLM

QUESTION = "昨天有一个客户抱怨他买了花给女朋友之后，两天花就枯了，你说作为客服我应该怎么解释？"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="default: $WARMSERVE_BASE_URL, else http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="llama-2-7b-chat")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--seed", type=int, help="Sample reproducibly.")
    args = parser.parse_args()
    server = {"model": args.model, "base_url": args.base_url} if args.base_url else {"model": args.model}
    llm = WarmServeLLM(
        **server,
        max_tokens=256,
        temperature=0.8,
        top_p=0.95,
        top_k=40,
        repetition_penalty=1.1,
        repeat_last_n=64,
        seed=args.seed,
    )
    chain = PromptTemplate.from_template("Q: {question} A: ") | llm | StrOutputParser()
    print("CustomLLM:", chain.invoke({"question": args.question}).strip())


if __name__ == "__main__":
    main()

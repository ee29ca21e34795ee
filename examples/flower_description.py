"""The tutorial's pipeline program, done right: a flower-bouquet description from the server.

The tutorial wired `transformers.pipeline("text-generation", ...)` into a prompt template
and reloaded the model on every run. Here the same prompt goes to warmserve's
completions endpoint, where the model is already loaded (a GGUF model through
llama.cpp, or a transformers model with `--backend transformers`).

    make serve                              # in another terminal
    .venv/bin/python examples/flower_description.py --flower 玫瑰 --price 50
"""

from __future__ import annotations

import argparse

from openai import OpenAI

TEMPLATE = "You are a professional florist copywriter.\nFor {flower} priced at ${price}, write a short description:\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--flower", default="roses")
    parser.add_argument("--price", default="50")
    args = parser.parse_args()
    client = OpenAI(base_url=args.base_url, api_key="unused")
    answer = client.completions.create(
        model=args.model,
        prompt=TEMPLATE.format(flower=args.flower, price=args.price),
        max_tokens=96,
        temperature=0.7,
        stop=["\n\n"],
    )
    print(answer.choices[0].text.strip())
    print(f"({answer.usage.completion_tokens} tokens)")


if __name__ == "__main__":
    main()

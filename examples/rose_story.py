"""The tutorial's first program, done right: ask a warm server instead of loading a model.

The tutorial built a tokenizer and a model in-process and called `model.generate` on
"请给我讲个玫瑰的爱情故事?" ("Tell me a love story about a rose"). Here the model stays
warm in warmserve, and any OpenAI client asks it.

    make serve                              # in another terminal
    .venv/bin/python examples/rose_story.py [--model NAME] [--base-url URL]
"""

from __future__ import annotations

import argparse

from openai import OpenAI


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()
    client = OpenAI(base_url=args.base_url, api_key="unused")
    stream = client.chat.completions.create(
        model=args.model,
        messages=[{"role": "user", "content": "请给我讲个玫瑰的爱情故事?"}],
        max_tokens=256,
        temperature=0.7,
        stream=True,
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()


if __name__ == "__main__":
    main()

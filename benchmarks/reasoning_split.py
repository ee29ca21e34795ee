"""What splitting a reasoning model's thinking from its answer costs, end to end, in decode tokens/s.

One server serves the embedded SmolLM2 twice with the same thinking chat template (it opens a
`<think>` block, tests/e2e/thinking_model.py): "split" finds the markers and splits (the worker
follows the block token by token, the API process splits the text and sends reasoning deltas),
"whole" has `reasoning.parse: false` and streams the same tokens as one text. Every request is
the same greedy chat with a fixed `max_tokens`; the model thinks for all of it, so the split's
whole per-token path is in use. The two models are measured in alternation, several rounds, at
concurrency 1 and 4, and each round's ratio is split / whole tokens per second.
Results: benchmarks/results/reasoning-split.json.

    .venv/bin/python benchmarks/reasoning_split.py [--rounds 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from warmserve.testing import ServerProcess, start_server

THINKING_TEMPLATE = """\
{%- for message in messages %}
<|im_start|>{{ message['role'] }}
{{ message['content'].split('</think>')[-1] }}<|im_end|>
{% endfor %}
{%- if add_generation_prompt %}
<|im_start|>assistant
<think>
{% endif %}"""  # SmolLM2's ChatML, opening a thinking block (and dropping past ones)
QUESTION = "Write a long story about a dragon who loves books."
OUT = Path(__file__).parent / "results" / "reasoning-split.json"


def serve(directory: Path) -> ServerProcess:
    template = directory / "thinking.jinja"
    template.write_text(THINKING_TEMPLATE)
    common = {"workers": 1, "threads": 2, "n_ctx": 1024, "chat_template": str(template)}
    models = [{"name": "split", **common}, {"name": "whole", **common, "reasoning": {"parse": False}}]
    config = directory / "warmserve.yaml"
    config.write_text(yaml.safe_dump({"models": models}))
    return start_server(["--config", str(config)], log_path=directory / "server.log")


def one(server: ServerProcess, model: str, max_tokens: int) -> int:
    """One streamed request; the completion tokens it got."""
    client = server.openai_client()
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": QUESTION}],
        temperature=0,
        max_tokens=max_tokens,
        stream=True,
        stream_options={"include_usage": True},
    )
    tokens = 0
    for chunk in stream:
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return tokens


def rate(server: ServerProcess, model: str, concurrency: int, max_tokens: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        tokens = sum(pool.map(lambda _: one(server, model, max_tokens), range(concurrency)))
    return tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
    }
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp)) as server:
        for model in ("split", "whole"):  # warm both workers
            one(server, model, 8)
        for concurrency in (1, 4):
            rounds = []
            for round_ in range(args.rounds):
                order = ("split", "whole") if round_ % 2 == 0 else ("whole", "split")
                measured = {model: rate(server, model, concurrency, args.max_tokens) for model in order}
                rounds.append({**measured, "ratio": measured["split"] / measured["whole"]})
            ratios = [r["ratio"] for r in rounds]
            results[f"concurrency_{concurrency}"] = {
                "rounds": rounds,
                "ratio_median": statistics.median(ratios),
                "split_tokens_per_s_median": statistics.median(r["split"] for r in rounds),
                "whole_tokens_per_s_median": statistics.median(r["whole"] for r in rounds),
            }
            print(concurrency, json.dumps(results[f"concurrency_{concurrency}"], indent=1))
    OUT.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

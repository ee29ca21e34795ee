"""The OpenAI-client half of deploy/docker/run-container-check.sh: prints one JSON object.

    python deploy/docker/check_chat.py ready URL [--timeout-s 600]   seconds until GET URL/ready answers 200
    python deploy/docker/check_chat.py chat URL                      one chat completion and one streamed
    python deploy/docker/check_chat.py drain URL -- STOP-COMMAND...  a stream in flight while STOP-COMMAND runs

`drain` starts a long streamed completion, runs STOP-COMMAND (e.g. `docker compose stop`) once the first
tokens arrive, and reports whether the stream still ran to its end: the server drains on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from openai import OpenAI

PROMPT = "In one sentence, what is a container image?"
LONG_PROMPT = "Count from 1 to 100, one number per line."


def wait_ready(url: str, timeout_s: float) -> dict[str, Any]:
    start = time.monotonic()
    attempts = 0
    last_error = ""
    while time.monotonic() - start < timeout_s:
        attempts += 1
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
                if response.status == 200:
                    return {"ready": True, "waited_s": round(time.monotonic() - start, 2), "attempts": attempts}
        except (urllib.error.URLError, OSError) as error:
            last_error = str(error)
        time.sleep(0.25)
    return {"ready": False, "waited_s": round(time.monotonic() - start, 2), "last_error": last_error}


def client(url: str) -> OpenAI:
    return OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=120, max_retries=0)


def chat(url: str) -> dict[str, Any]:
    openai = client(url)
    models = [m.id for m in openai.models.list()]
    model = models[0]
    start = time.monotonic()
    completion = openai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=48, temperature=0
    )
    chat_s = time.monotonic() - start
    answer = completion.choices[0].message.content or ""

    start = time.monotonic()
    first_token_s: float | None = None
    pieces: list[str] = []
    finish_reason: str | None = None
    stream = openai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=48, temperature=0, stream=True
    )
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        if choice.delta.content:
            if first_token_s is None:
                first_token_s = time.monotonic() - start
            pieces.append(choice.delta.content)
        finish_reason = choice.finish_reason or finish_reason
    streamed = "".join(pieces)
    return {
        "models": models,
        "model": model,
        "prompt": PROMPT,
        "chat": {
            "answer": answer,
            "finish_reason": completion.choices[0].finish_reason,
            "usage": completion.usage.model_dump() if completion.usage else None,
            "seconds": round(chat_s, 3),
        },
        "stream": {
            "answer": streamed,
            "chunks": len(pieces),
            "finish_reason": finish_reason,
            "first_token_s": round(first_token_s, 3) if first_token_s is not None else None,
            "seconds": round(time.monotonic() - start, 3),
            "same_as_chat": streamed == answer,
        },
        "ok": bool(answer.strip()) and bool(streamed.strip()) and finish_reason is not None,
    }


def drain(url: str, stop_command: list[str]) -> dict[str, Any]:
    openai = client(url)
    model = next(iter(openai.models.list())).id
    start = time.monotonic()
    stream = openai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": LONG_PROMPT}], max_tokens=256, temperature=0, stream=True
    )
    stop: dict[str, Any] = {}

    def run_stop() -> None:
        began = time.monotonic()
        stop["began_s"] = round(began - start, 3)
        result = subprocess.run(stop_command, capture_output=True, text=True, check=False)
        stop["returncode"] = result.returncode
        stop["seconds"] = round(time.monotonic() - began, 3)
        stop["output"] = (result.stdout + result.stderr).strip()[-2000:]

    stopper = threading.Thread(target=run_stop)
    chunks = 0
    chunks_after_stop = 0
    finish_reason: str | None = None
    error = None
    try:
        for chunk in stream:
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            if choice.delta.content:
                chunks += 1
                if stopper.ident is None:
                    stopper.start()
                else:
                    chunks_after_stop += 1
            finish_reason = choice.finish_reason or finish_reason
    except Exception as exc:  # a stream cut short by the stop is what this reports
        error = f"{type(exc).__name__}: {exc}"
    stream_s = time.monotonic() - start
    if stopper.ident is None:
        stopper.start()
    stopper.join()
    return {
        "stop_command": stop_command,
        "stream_chunks": chunks,
        "stream_chunks_after_stop_began": chunks_after_stop,
        "stream_finish_reason": finish_reason,
        "stream_error": error,
        "stream_ended_s": round(stream_s, 3),
        "stop": stop,
        "ok": error is None and finish_reason is not None and stop.get("returncode") == 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ready = sub.add_parser("ready")
    ready.add_argument("url")
    ready.add_argument("--timeout-s", type=float, default=600)
    sub.add_parser("chat").add_argument("url")
    drain_parser = sub.add_parser("drain")
    drain_parser.add_argument("url")
    drain_parser.add_argument("stop_command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    if args.command == "ready":
        result = wait_ready(url, args.timeout_s)
        ok = result["ready"]
    elif args.command == "chat":
        result = chat(url)
        ok = result["ok"]
    else:
        command = args.stop_command[1:] if args.stop_command[:1] == ["--"] else args.stop_command
        if not command:
            parser.error("drain needs a stop command after --")
        result = drain(url, command)
        ok = result["ok"]
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""What the web page weighs and what the live dashboard costs the server.

Against a real server (the embedded SmolLM2-135M-Instruct on 2 workers of 1 thread, n_ctx 1024):

    page weight     bytes on the wire for a cold load of /ui (the HTML and every file it loads,
                    gzipped as the server sends them), from the browser's resource timing
    first paint     first-paint and first-contentful-paint of a cold load (a new browser context
                    each time), from the browser's paint timing; median of --loads
    dashboard cost  decode tokens/s of the same load (--concurrency streamed chat requests at a time,
                    --requests per round, temperature 0, fixed prompts) with no browser attached and
                    with a browser showing /ui/pool (its feed pushing stats every second), rounds
                    interleaved and the order alternated; also the API process's CPU seconds per
                    round (from /proc), which holds the feed

The browser runs on the same machine, so "with" also pays for chromium drawing the page: the
tokens/s ratio is an upper bound on the feed's cost to the server. Optionally writes the two
screenshots README shows (--screenshots docs/), the dashboard taken under load.

Results: benchmarks/results/ui.json.

    .venv/bin/python benchmarks/ui_cost.py --rounds 4 --screenshots docs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

from warmserve.config import EMBEDDED_MODEL_NAME
from warmserve.testing import ServerProcess

MODEL = EMBEDDED_MODEL_NAME
TOPICS = ["the sea", "snow", "a city at night", "bread", "rivers", "the moon", "trains", "gardens"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(server: ServerProcess, requests: int, concurrency: int, max_tokens: int) -> tuple[int, float]:
    """Generated tokens and wall seconds for `requests` streamed chats, `concurrency` at a time."""
    client = server.openai_client()
    counts: list[int] = []
    lock = threading.Lock()
    queue = list(range(requests))

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                index = queue.pop()
            stream = client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": f"Write a few sentences about {TOPICS[index % 8]}."}],
                max_tokens=max_tokens,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
            for chunk in stream:
                if chunk.usage is not None:
                    with lock:
                        counts.append(chunk.usage.completion_tokens)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts), time.perf_counter() - start


def page_weight_and_paint(browser: Browser, url: str, loads: int) -> dict[str, Any]:
    transfers, paints, contentful = [], [], []
    for _ in range(loads):
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/ui", wait_until="load")
        page.wait_for_function("performance.getEntriesByType('paint').length >= 2")
        timing = page.evaluate(
            """() => {
                const nav = performance.getEntriesByType('navigation')[0];
                const own = performance.getEntriesByType('resource').filter((r) => r.name.includes('/ui/static/'));
                const paints = performance.getEntriesByType('paint');
                const paint = Object.fromEntries(paints.map((p) => [p.name, p.startTime]));
                return {
                    transfer: nav.transferSize + own.reduce((sum, r) => sum + r.transferSize, 0),
                    decoded: nav.decodedBodySize + own.reduce((sum, r) => sum + r.decodedBodySize, 0),
                    files: own.length + 1,
                    first_paint: paint['first-paint'],
                    first_contentful_paint: paint['first-contentful-paint'],
                };
            }"""
        )
        transfers.append(timing)
        paints.append(timing["first_paint"])
        contentful.append(timing["first_contentful_paint"])
        context.close()
    return {
        "files": transfers[0]["files"],
        "transfer_bytes": transfers[0]["transfer"],
        "uncompressed_bytes": transfers[0]["decoded"],
        "first_paint_ms_median": round(statistics.median(paints), 1),
        "first_contentful_paint_ms_median": round(statistics.median(contentful), 1),
        "first_paint_ms": [round(p, 1) for p in paints],
    }


def dashboard(browser: Browser, url: str) -> tuple[Page, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{url}/ui/pool")
    page.wait_for_selector("#feed-state:text('live')")
    return page, context


def playground_screenshot(browser: Browser, url: str, path: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 940})
    page = context.new_page()
    page.goto(f"{url}/ui")
    form = page.locator("fieldset.lane-settings")
    form.locator("[name=temperature]").fill("0")
    form.locator("[name=max_tokens]").fill("90")
    page.fill("#system", "You are a concise assistant. Answer in Markdown.")
    page.fill("#prompt", "Give me three tips for baking bread, as a list.")
    page.press("#prompt", "Enter")
    page.wait_for_selector(".msg.assistant [data-testid=stats]:has-text('finish')", timeout=180_000)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=path)
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--screenshots", type=Path, help="Write ui-playground.png and ui-pool.png here.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ui.json"))
    args = parser.parse_args()

    log = Path(tempfile.mkdtemp(prefix="ui-cost-")) / "server.log"
    server = ServerProcess(["--workers", "2", "--threads", "1", "--n-ctx", "1024"], log_path=log).ready_or_stopped()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        with sync_playwright() as driver:
            launch_args = ["--no-sandbox"] if os.geteuid() == 0 else []
            browser = driver.chromium.launch(executable_path=chromium, args=launch_args)
            page = page_weight_and_paint(browser, server.base_url, args.loads)
            print("page", page, flush=True)
            run_load(server, args.concurrency, args.concurrency, args.max_tokens)  # warm up
            rounds: list[dict[str, Any]] = []
            for index in range(args.rounds):
                order = ["without", "with"] if index % 2 == 0 else ["with", "without"]
                for case in order:
                    opened = dashboard(browser, server.base_url) if case == "with" else None
                    cpu_before = cpu_seconds(server.process.pid)
                    tokens, seconds = run_load(server, args.requests, args.concurrency, args.max_tokens)
                    api_cpu = cpu_seconds(server.process.pid) - cpu_before
                    if opened is not None:
                        if args.screenshots is not None and index == args.rounds - 1:
                            args.screenshots.mkdir(parents=True, exist_ok=True)
                            opened[0].screenshot(path=args.screenshots / "ui-pool.png", full_page=True)
                        opened[1].close()
                    result = {
                        "round": index,
                        "case": case,
                        "tokens": tokens,
                        "seconds": round(seconds, 3),
                        "tokens_per_s": round(tokens / seconds, 2),
                        "api_cpu_s": round(api_cpu, 3),
                    }
                    rounds.append(result)
                    print(result, flush=True)
            if args.screenshots is not None:
                playground_screenshot(browser, server.base_url, args.screenshots / "ui-playground.png")
            browser.close()
    finally:
        server.stop()

    def median(case: str, key: str) -> float:
        return statistics.median(r[key] for r in rounds if r["case"] == case)

    ratios = [
        with_["tokens_per_s"] / without["tokens_per_s"]
        for with_, without in zip(
            [r for r in rounds if r["case"] == "with"], [r for r in rounds if r["case"] == "without"], strict=True
        )
    ]
    summary = {
        "page": page,
        "tokens_per_s_without_browser": median("without", "tokens_per_s"),
        "tokens_per_s_with_dashboard": median("with", "tokens_per_s"),
        "ratio_of_medians": round(median("with", "tokens_per_s") / median("without", "tokens_per_s"), 3),
        "median_ratio_per_round": round(statistics.median(ratios), 3),
        "api_cpu_s_per_round_without": median("without", "api_cpu_s"),
        "api_cpu_s_per_round_with": median("with", "api_cpu_s"),
        "rounds": rounds,
        "setup": {
            "model": MODEL,
            "workers": 2,
            "threads": 1,
            "requests_per_round": args.requests,
            "concurrency": args.concurrency,
            "max_tokens": args.max_tokens,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
            "python": sys.version.split()[0],
            "chromium": chromium,
            "feed_interval_s": 1.0,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("rounds", "setup")}, indent=2))


if __name__ == "__main__":
    main()

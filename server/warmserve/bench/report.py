"""The results for people and for files: a table, a JSON document, a PNG plot.

matplotlib is an optional extra (`warmserve[bench]`) imported only to draw, and
drawn through a bare `Figure` so that no global pyplot state is touched.
"""

from __future__ import annotations

import json
import math
import os
import platform
from contextlib import suppress
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from warmserve.bench.loadgen import BenchError
from warmserve.bench.settings import BenchSettings
from warmserve.bench.stats import LevelSummary, Sweep

_PACKAGES = ("warmserve", "httpx", "llama-cpp-python", "matplotlib")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def format_table(summaries: list[LevelSummary]) -> str:
    header = (
        "concurrency",
        "done",
        "errors",
        "req/s",
        "tok/s",
        "TTFT p50 ms",
        "TTFT p95 ms",
        "ITL p50 ms",
        "ITL p95 ms",
        "decode tok/s",
        "E2E p50 ms",
        "E2E p95 ms",
    )
    rows = [
        (
            str(s.concurrency),
            f"{s.completed}/{s.planned}",
            str(s.errors),
            f"{s.requests_per_s:.2f}",
            f"{s.tokens_per_s:.1f}",
            _ms(s.ttft_s.p50),
            _ms(s.ttft_s.p95),
            _ms(s.itl_s.p50),
            _ms(s.itl_s.p95),
            "-" if s.decode_tokens_per_s is None else f"{s.decode_tokens_per_s:.1f}",
            _ms(s.e2e_s.p50),
            _ms(s.e2e_s.p95),
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(0, "  ".join(cell.rjust(width) for cell, width in zip(header, widths, strict=True)))
    for s in summaries:
        if s.cancelled or s.not_started:
            lines.append(
                f"concurrency {s.concurrency}: time limit reached; {s.cancelled} cancelled, {s.not_started} not started"
            )
        if s.tokens_unknown:
            lines.append(f"concurrency {s.concurrency}: {s.tokens_unknown} answers gave no token count (no usage)")
        for message, count in sorted(s.error_messages.items(), key=lambda item: -item[1])[:3]:
            lines.append(f"concurrency {s.concurrency}: {count} x {message}")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """The machine running the load and the versions installed on it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = {"python": platform.python_version()}
    for package in _PACKAGES:
        with suppress(PackageNotFoundError):
            versions[package] = version(package)
    return {
        "machine": {"cpu_count": cores, "platform": platform.platform(), "processor": platform.machine()},
        "versions": versions,
    }


def to_json(settings: BenchSettings, sweep: Sweep) -> dict[str, Any]:
    here = environment()
    before, after = sweep.load_average
    return {
        "what": "warmserve bench: OpenAI-protocol load at each concurrency level",
        "started_at": sweep.started_at.isoformat(timespec="seconds"),
        "machine": here["machine"] | {"load_average": {"before": before, "after": after}},
        "versions": here["versions"],
        "settings": settings.model_dump(mode="json", exclude={"api_key", "out", "plot"}),
        "model": sweep.model,
        "levels": [
            {
                **asdict(summary),
                "requests": [
                    {key: value for key, value in asdict(record).items() if key != "itl_s"}
                    | {"content_chunks": len(record.itl_s) + 1 if record.ttft_s is not None else 0}
                    for record in level.records
                ],
            }
            for level, summary in zip(sweep.levels, sweep.summaries, strict=True)
        ],
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def require_matplotlib() -> None:
    """Fail before the run, not after it, when the plot cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise BenchError("--plot needs matplotlib: pip install 'warmserve[bench]' (or pip install matplotlib)") from exc


def write_plot(path: Path, summaries: list[LevelSummary], title: str) -> None:
    """Two panels against concurrency: aggregate tokens/s, and time to first token p50/p95."""
    from matplotlib.figure import Figure

    levels = [s.concurrency for s in summaries]
    figure = Figure(figsize=(10, 4), layout="constrained")
    throughput, ttft = figure.subplots(1, 2)
    throughput.plot(levels, [s.tokens_per_s for s in summaries], marker="o")
    throughput.set(title="Throughput", ylabel="generated tokens/s (all requests)", ylim=(0, None))
    for name, values in (
        ("p50", [s.ttft_s.p50 for s in summaries]),
        ("p95", [s.ttft_s.p95 for s in summaries]),
    ):
        ttft.plot(levels, [math.nan if v is None else v * 1000 for v in values], marker="o", label=name)
    ttft.set(title="Time to first token", ylabel="ms", ylim=(0, None))
    ttft.legend()
    for axes in (throughput, ttft):
        axes.set_xscale("log", base=2)
        axes.set_xticks(levels, [str(level) for level in levels])
        axes.set_xlabel("concurrent requests")
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)

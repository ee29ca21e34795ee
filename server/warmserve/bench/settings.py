"""What one `warmserve bench` run does: the server to load, the sweep, the outputs.

Like the server's settings, every field is described and bounded here and the
command line is generated from this model (cli.py); `WARMSERVE_BENCH_*` variables
sit between flags and defaults, which keeps an API key off the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from warmserve.bench.wire import Endpoint

Concurrency = Annotated[int, Field(ge=1, le=1024)]


class BenchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WARMSERVE_BENCH_", extra="forbid", frozen=True)

    base_url: str = Field(
        "http://127.0.0.1:8000/v1",
        min_length=1,
        description="OpenAI base URL of the server to measure (any OpenAI-compatible server), up to /v1.",
    )
    model: str | None = Field(
        None, description="Model to request; default: the first model the server lists at /models."
    )
    endpoint: Endpoint = Field(
        "completions",
        description="completions (/completions: a raw continuation, rarely ends before max_tokens), "
        "chat (/chat/completions, through the model's chat template), responses (OpenAI's /responses, "
        "unstored) or messages (Anthropic's /messages).",
    )
    concurrency: list[Concurrency] = Field(
        [1, 2, 4, 8, 16],
        min_length=1,
        max_length=32,
        description="Concurrency levels, comma-separated; each keeps that many requests in flight.",
    )
    requests: int = Field(32, ge=1, le=100_000, description="Requests per concurrency level.")
    max_seconds: float = Field(
        120.0,
        gt=0,
        le=86_400,
        description="Time limit per level: then no request starts and running ones are cancelled.",
    )
    max_tokens: int = Field(64, ge=1, le=1_000_000, description="max_tokens of every request.")
    prompt_tokens: int = Field(
        128,
        ge=4,
        le=1_000_000,
        description="Approximate prompt length in tokens: fixed English text, numbered per request.",
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature of every request.")
    stream: bool = Field(True, description="Stream (SSE) and measure time to first token and inter-token latency.")
    warmup: int = Field(1, ge=0, le=100, description="Unmeasured requests sent one at a time first.")
    timeout: float = Field(
        300.0, gt=0, le=86_400, description="Seconds one request may take in all before it is an error."
    )
    api_key: SecretStr | None = Field(None, description="Sent as 'Authorization: Bearer KEY'.")
    out: Path | None = Field(None, description="Write the results (with machine and versions) as JSON here.")
    plot: Path | None = Field(
        None, description="Write a PNG of throughput and TTFT vs concurrency here (needs matplotlib)."
    )

    @field_validator("concurrency")
    @classmethod
    def _ascending_levels(cls, levels: list[int]) -> list[int]:
        return sorted(set(levels))

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")

"""What this machine has (GPUs, memory), for defaults sized by it; read when settings are resolved or a
worker loads its model, never per request."""

from __future__ import annotations

import os
from pathlib import Path

# llama-server's --cache-ram default: the most a model's prompt caches take by default, all workers together.
PROMPT_CACHE_DEFAULT_MAX = 8 << 30


def available_memory_bytes() -> int:
    """Memory the kernel could hand out now without swapping (/proc/meminfo's MemAvailable); 0 if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def prompt_cache_share(workers: int) -> int:
    """One worker's default prompt cache budget: a quarter of the available memory, at most
    PROMPT_CACHE_DEFAULT_MAX, split between the model's workers."""
    return min(PROMPT_CACHE_DEFAULT_MAX, available_memory_bytes() // 4) // max(1, workers)


def visible_gpu_count(driver_dir: Path = Path("/proc/driver/nvidia/gpus")) -> int:
    """NVIDIA GPUs the kernel driver reports, counted without importing torch or CUDA."""
    try:
        return sum(1 for entry in driver_dir.iterdir() if entry.is_dir())
    except OSError:
        return 0


def total_memory_bytes() -> int:
    """Physical memory; 0 if unknown."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0

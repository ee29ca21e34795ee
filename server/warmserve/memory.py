"""Memory this machine has now, for defaults sized by it (read when a worker loads its model)."""

from __future__ import annotations

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

"""Lending idle workers' CPU cores to busy ones, for prompt processing only.

On a CPU a model gets one single-thread worker per core, which keeps every core busy under load
and survives another process taking a core. A lone request would then compute its prompt on one
core while the others idle. So a worker that has been idle for a while lends its core: busy
workers compute prompt chunks (compute-bound, large) on more threads. One-token decode steps stay
on the worker's own threads, since there a second thread mostly waits for the API process and the
clients on the same cores. Cores are lent only while the machine really has them idle: a spinning
llama.cpp thread whose partner lost its core to another process stalls every step.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

# A worker idle this long lends its core (shorter gaps between requests do not); while some workers
# are busy and others idle, lending is looked at again this often, reading the machine's idle cores.
LEND_AFTER_S = 0.25
_MIN_WINDOW_S = 0.5  # the shortest interval over which idle cores are measured
_PROC_STAT = Path("/proc/stat")


def prompt_threads(busy: int, lenders: int, own_share: int, idle_cores: float | None) -> int:
    """A busy worker's threads for prompt chunks: its own share plus an even part of the lent cores.

    Lenders lend their share only as far as the machine has cores idle (`None`: unknown, trusted);
    half an idle core rounds up, because the busy workers' own cores are never fully busy.
    """
    lendable = lenders * own_share
    if idle_cores is not None:
        lendable = min(lendable, int(idle_cores + 0.5))
    return own_share + lendable // max(1, busy)


class IdleCores:
    """Idle cores among this process's CPUs over the last interval, read from /proc/stat (Linux)."""

    def __init__(self, stat: Path = _PROC_STAT, cpus: set[int] | None = None) -> None:
        self._stat = stat
        self._cpus = cpus if cpus is not None else _allowed_cpus()
        self._last = self._read()
        self._idle: float | None = None

    def cores(self) -> float | None:
        """The idle cores measured up to now; None until an interval has passed or without /proc/stat."""
        now = self._read()
        if now is None or self._last is None:
            return None
        (then_s, then_idle, then_total), (now_s, now_idle, now_total) = self._last, now
        if now_s - then_s >= _MIN_WINDOW_S and now_total > then_total:
            self._idle = len(self._cpus) * (now_idle - then_idle) / (now_total - then_total)
            self._last = now
        return self._idle

    def _read(self) -> tuple[float, int, int] | None:
        """(time, idle jiffies, all jiffies) summed over our CPUs."""
        try:
            lines = self._stat.read_text().splitlines()
        except OSError:
            return None
        idle = total = 0
        for line in lines:
            name, _, values = line.partition(" ")
            if not name.startswith("cpu") or not name[3:].isdigit() or int(name[3:]) not in self._cpus:
                continue
            # user nice system idle iowait irq softirq steal (guest time is already in user)
            ticks = [int(v) for v in values.split()[:8]]
            idle += ticks[3] + ticks[4]
            total += sum(ticks)
        return (time.monotonic(), idle, total) if total else None


def _allowed_cpus() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


class Lender(Protocol):
    """What lending needs of a worker handle."""

    index: int

    @property
    def state(self) -> str: ...

    @property
    def busy(self) -> bool: ...

    def set_threads(self, threads: int) -> None: ...


class CoreLending:
    """Decides every busy worker's prompt threads whenever a worker starts or stops being busy."""

    def __init__(self, own_share: int, workers: Callable[[], Sequence[Lender]], idle: IdleCores | None = None) -> None:
        self._own_share = own_share
        self._workers = workers
        self._idle = idle or IdleCores()
        self._idle_since: dict[int, float] = {}
        self._recheck: asyncio.TimerHandle | None = None

    def balance(self, also_busy: Lender | None = None) -> None:
        now = time.monotonic()
        ready = [w for w in self._workers() if w.state == "ready"]
        busy = [w for w in ready if w.busy or w is also_busy]
        lenders = 0
        for worker in ready:
            if worker in busy:
                self._idle_since.pop(worker.index, None)
            elif now - self._idle_since.setdefault(worker.index, now) >= LEND_AFTER_S:
                lenders += 1
        idle_cores = self._idle.cores() if lenders else None  # read /proc/stat only when something could be lent
        threads = prompt_threads(len(busy), lenders, self._own_share, idle_cores)
        for worker in busy:
            worker.set_threads(threads)
        # Idle workers that will soon lend, or lent cores the machine may need back: look again.
        if busy and len(busy) < len(ready):
            self._schedule(LEND_AFTER_S)
        elif self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None

    def stop(self) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None

    def _schedule(self, delay_s: float) -> None:
        if self._recheck is None:
            self._recheck = asyncio.get_running_loop().call_later(delay_s, self._on_recheck)

    def _on_recheck(self) -> None:
        self._recheck = None
        self.balance()

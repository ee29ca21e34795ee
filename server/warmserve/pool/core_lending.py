"""Lending idle workers' CPU cores to busy ones.

On a CPU a model gets one single-thread worker per core, which keeps every core busy under load
and survives another process taking a core. A lone request would then run on one core while the
others idle. So a worker that has been idle for a while lends its core: busy workers compute
prompt chunks (compute-bound, large) on more threads, and decode on them too where the engine
measures that faster (backends/llama/decode_grouping.py: on some machines a second decode thread
mostly waits for the API process and the clients on the same cores). A lender that gets a request
takes its core back at the borrower's next step. Cores are lent only while no other process needs
them: a spinning llama.cpp thread whose partner lost its core to another process stalls every step.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

# A worker idle this long lends its core (shorter gaps between requests do not); while some workers
# are busy and others idle, lending is looked at again this often, reading the machine's spare cores.
LEND_AFTER_S = 0.25
_MIN_WINDOW_S = 0.5  # the shortest interval over which idle cores are measured
_PROC_STAT = Path("/proc/stat")
_PROC = Path("/proc")


def lent_threads(busy: int, lenders: int, own_share: int, spare_cores: float | None) -> int:
    """A busy worker's threads: its own share plus an even part of the cores idle workers lend.

    Lenders lend their share only as far as other processes leave the machine's cores spare
    (`spare_cores`: idle cores plus the ones our workers use; None: unknown, trusted). Half a
    spare core rounds up: the API process and its clients always use a little.
    """
    lendable = lenders * own_share
    if spare_cores is not None:
        lendable = min(lendable, int(spare_cores - busy * own_share + 0.5))
    return own_share + max(0, lendable) // max(1, busy)


class SpareCores:
    """Cores other processes leave to our workers, over the last interval: idle cores plus what our
    worker processes used, from /proc/stat and /proc/PID/stat (Linux).

    Our workers' own use counts as spare, so a worker decoding on a lent core does not look like
    another process taking it: only the rest of the machine's load stops lending. So does the time
    of niced processes (a background build, a test run under `nice`) while we are not niced
    ourselves: the scheduler gives our threads the core before them.
    """

    def __init__(
        self, stat: Path = _PROC_STAT, cpus: set[int] | None = None, proc: Path = _PROC, niced_yield: bool | None = None
    ) -> None:
        self._stat = stat
        self._proc = proc
        self._cpus = cpus if cpus is not None else _allowed_cpus()
        self._niced_yield = os.getpriority(os.PRIO_PROCESS, 0) <= 0 if niced_yield is None else niced_yield
        self._last = self._read()
        self._last_ours: dict[int, int] = {}
        self._spare: float | None = None

    def cores(self, workers: Sequence[int] = ()) -> float | None:
        """Spare cores measured up to now for the worker processes `workers` (pids); None until an
        interval has passed, or without /proc/stat."""
        now = self._read()
        if now is None or self._last is None:
            return None
        ours = {pid: ticks for pid in workers if (ticks := self._process_ticks(pid)) is not None}
        (then_s, then_idle, then_total), (now_s, now_idle, now_total) = self._last, now
        if now_s - then_s >= _MIN_WINDOW_S and now_total > then_total:
            used = sum(ticks - self._last_ours.get(pid, ticks) for pid, ticks in ours.items())
            self._spare = len(self._cpus) * min(1.0, (now_idle - then_idle + used) / (now_total - then_total))
            self._last, self._last_ours = now, ours
        else:
            self._last_ours = {pid: self._last_ours.get(pid, ticks) for pid, ticks in ours.items()}
        return self._spare

    def _read(self) -> tuple[float, int, int] | None:
        """(time, spare jiffies, all jiffies) summed over our CPUs; spare: idle, and niced if they yield to us."""
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
            idle += ticks[3] + ticks[4] + (ticks[1] if self._niced_yield else 0)
            total += sum(ticks)
        return (time.monotonic(), idle, total) if total else None

    def _process_ticks(self, pid: int) -> int | None:
        """A process's user + system time, in the same clock ticks as /proc/stat; None once it is gone."""
        try:
            fields = (self._proc / str(pid) / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)


def _allowed_cpus() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


class Lender(Protocol):
    """What lending needs of a worker handle."""

    index: int

    @property
    def pid(self) -> int | None: ...

    @property
    def state(self) -> str: ...

    @property
    def busy(self) -> bool: ...

    def set_threads(self, threads: int) -> None: ...


class CoreLending:
    """Decides every busy worker's threads whenever a worker starts or stops being busy."""

    def __init__(
        self, own_share: int, workers: Callable[[], Sequence[Lender]], spare: SpareCores | None = None
    ) -> None:
        self._own_share = own_share
        self._workers = workers
        self._spare = spare or SpareCores()
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
        # /proc is read only when something could be lent.
        spare = self._spare.cores([w.pid for w in ready if w.pid is not None]) if lenders else None
        threads = lent_threads(len(busy), lenders, self._own_share, spare)
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

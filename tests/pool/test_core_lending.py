"""Lending idle workers' cores for prompt chunks: the rule, the idle-core reading, the timing."""

import asyncio
from dataclasses import dataclass, field

import pytest

from warmserve.pool import core_lending
from warmserve.pool.core_lending import CoreLending, IdleCores, prompt_threads


@pytest.mark.parametrize(
    ("busy", "lenders", "own", "idle", "threads"),
    [
        (1, 1, 1, None, 2),  # a lone request computes its prompt on both cores
        (1, 1, 1, 0.7, 2),  # the busy worker's own core is never fully busy
        (1, 1, 1, 0.2, 1),  # another process holds the idle worker's core: nothing to lend
        (2, 0, 1, 1.0, 1),  # nobody idle long enough
        (2, 1, 1, None, 1),  # one core cannot be split between two workers
        (1, 3, 2, 8.0, 8),
        (1, 3, 2, 3.6, 6),
    ],
)
def test_busy_workers_get_the_idle_cores_the_machine_really_has(busy, lenders, own, idle, threads):
    assert prompt_threads(busy, lenders, own, idle) == threads


def stat(idle0: int, idle1: int, busy: int) -> str:
    # cpuN user nice system idle iowait irq softirq steal guest guest_nice
    return (
        f"cpu  {2 * busy} 0 0 {idle0 + idle1} 0 0 0 0 0 0\n"
        f"cpu0 {busy} 0 0 {idle0} 0 0 0 0 0 0\n"
        f"cpu1 {busy} 0 0 {idle1} 0 0 0 0 0 0\n"
        f"cpu2 {busy} 0 0 0 0 0 0 0 0 0\n"
        "intr 1 2 3\n"
    )


def test_idle_cores_count_only_this_process_cpus_over_an_interval(tmp_path, monkeypatch):
    path = tmp_path / "stat"
    path.write_text(stat(10, 10, 10))
    clock = iter([0.0, 0.1, 1.0, 1.2])
    monkeypatch.setattr(core_lending.time, "monotonic", lambda: next(clock))
    idle = IdleCores(path, cpus={0, 1})
    path.write_text(stat(50, 100, 100))
    assert idle.cores() is None  # 0.1 s is too short to measure
    # cpu0 idle 40 of 130 new ticks, cpu1 90 of 180; cpu2 (not ours) is ignored
    assert idle.cores() == pytest.approx(2 * 130 / 310)
    assert idle.cores() == pytest.approx(2 * 130 / 310)  # no new interval yet: the last value


def test_idle_cores_are_unknown_without_proc_stat(tmp_path):
    assert IdleCores(tmp_path / "missing", cpus={0}).cores() is None


@dataclass(eq=False)
class Worker:
    index: int
    state: str = "ready"
    busy: bool = False
    sent: list[int] = field(default_factory=list)

    def set_threads(self, threads: int) -> None:
        if not self.sent or self.sent[-1] != threads:  # like WorkerHandle: only changes are sent
            self.sent.append(threads)


class Unknown(IdleCores):
    def __init__(self) -> None:
        pass

    def cores(self) -> float | None:
        return None


async def test_a_worker_lends_its_core_only_after_being_idle_for_a_while(monkeypatch):
    monkeypatch.setattr(core_lending, "LEND_AFTER_S", 0.05)
    workers = [Worker(0), Worker(1)]
    lending = CoreLending(1, lambda: workers, Unknown())
    workers[0].busy = True
    lending.balance()
    assert workers[0].sent == [1]  # worker 1 has only just been seen idle
    await asyncio.sleep(0.2)  # the recheck lends it
    assert workers[0].sent == [1, 2]
    workers[1].busy = True  # a request for worker 1: it takes its core back at once
    lending.balance(also_busy=workers[1])
    assert (workers[0].sent[-1], workers[1].sent) == (1, [1])
    workers[0].busy = workers[1].busy = False
    lending.balance()
    workers[0].busy = True
    lending.balance(also_busy=workers[0])
    assert workers[0].sent[-1] == 1  # worker 1 idled for a moment only: nothing lent yet
    lending.stop()

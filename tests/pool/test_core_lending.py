"""Lending idle workers' cores: the rule, the spare-core reading, the timing."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from warmserve.pool import core_lending
from warmserve.pool.core_lending import CoreLending, SpareCores, lent_threads


@pytest.mark.parametrize(
    ("busy", "lenders", "own", "spare", "threads"),
    [
        (1, 1, 1, None, 2),  # a lone request runs on both cores
        (1, 1, 1, 2.0, 2),  # nothing else runs: the idle worker's core is spare
        (1, 1, 1, 1.7, 2),  # the API process and its clients use a little: still lent
        (1, 1, 1, 1.2, 1),  # another process holds most of a core: nothing to lend
        (2, 0, 1, 2.0, 1),  # nobody idle long enough
        (2, 1, 1, None, 1),  # one core cannot be split between two workers
        (1, 3, 2, 8.0, 8),
        (1, 3, 2, 5.6, 6),
    ],
)
def test_busy_workers_get_the_cores_other_processes_leave_spare(busy, lenders, own, spare, threads):
    assert lent_threads(busy, lenders, own, spare) == threads


def stat(idle0: int, idle1: int, busy: int, niced: int = 0) -> str:
    # cpuN user nice system idle iowait irq softirq steal guest guest_nice
    return (
        f"cpu  {2 * busy} {2 * niced} 0 {idle0 + idle1} 0 0 0 0 0 0\n"
        f"cpu0 {busy} {niced} 0 {idle0} 0 0 0 0 0 0\n"
        f"cpu1 {busy} {niced} 0 {idle1} 0 0 0 0 0 0\n"
        f"cpu2 {busy} {niced} 0 0 0 0 0 0 0 0\n"
        "intr 1 2 3\n"
    )


def process_stat(pid: int, utime: int, stime: int) -> str:
    # pid (comm) state ppid ... : utime and stime are fields 14 and 15; a comm may hold spaces and ")"
    return f"{pid} (llama ) worker) S 1 1 1 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 0 3 0 100\n"


def test_spare_cores_are_idle_ones_plus_our_workers_use_on_this_process_cpus(tmp_path, monkeypatch):
    path, proc = tmp_path / "stat", tmp_path / "proc"
    (proc / "7").mkdir(parents=True)
    path.write_text(stat(10, 10, 10))
    (proc / "7" / "stat").write_text(process_stat(7, 5, 5))
    clock = iter([0.0, 0.1, 1.0, 1.2])
    monkeypatch.setattr(core_lending.time, "monotonic", lambda: next(clock))
    spare = SpareCores(path, cpus={0, 1}, proc=proc)
    path.write_text(stat(50, 100, 100))
    assert spare.cores([7]) is None  # 0.1 s is too short to measure
    (proc / "7" / "stat").write_text(process_stat(7, 65, 15))  # our worker used 70 ticks meanwhile
    # cpu0 idle 40 of 130 new ticks, cpu1 90 of 180, our worker 70; cpu2 (not ours) is ignored
    assert spare.cores([7, 8]) == pytest.approx(2 * (130 + 70) / 310)  # pid 8 has no /proc entry: gone
    assert spare.cores([7]) == pytest.approx(2 * (130 + 70) / 310)  # no new interval yet: the last value


@pytest.mark.parametrize(("we_are_niced", "spare"), [(False, 2 * 80 / 100), (True, 2 * 40 / 100)])
def test_niced_processes_leave_their_cores_spare_unless_we_are_niced_too(tmp_path, monkeypatch, we_are_niced, spare):
    path = tmp_path / "stat"
    path.write_text(stat(10, 10, 10))
    clock = iter([0.0, 1.0])
    monkeypatch.setattr(core_lending.time, "monotonic", lambda: next(clock))
    cores = SpareCores(path, cpus={0, 1}, proc=tmp_path, niced_yield=not we_are_niced)
    path.write_text(stat(30, 30, 20, niced=20))  # per core since: 20 idle, 10 busy, 20 niced of 50 ticks
    assert cores.cores() == pytest.approx(spare)


def test_spare_cores_are_unknown_without_proc_stat(tmp_path):
    assert SpareCores(tmp_path / "missing", cpus={0}).cores() is None


@dataclass(eq=False)
class Worker:
    index: int
    pid: int | None = None
    state: str = "ready"
    busy: bool = False
    sent: list[int] = field(default_factory=list)

    def set_threads(self, threads: int) -> None:
        if not self.sent or self.sent[-1] != threads:  # like WorkerHandle: only changes are sent
            self.sent.append(threads)


class Unknown(SpareCores):
    def __init__(self) -> None:
        pass

    def cores(self, workers: Sequence[int] = ()) -> float | None:
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

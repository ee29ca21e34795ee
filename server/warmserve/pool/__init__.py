"""The worker pool: model lifecycles and their events, request tracking, worker processes."""

from warmserve.pool.adapter_view import AdapterModel
from warmserve.pool.base import Pool, PoolFactory
from warmserve.pool.events import PoolEvent, Snapshot, StateChanged, WorkerEvent, WorkerStatus
from warmserve.pool.managed import ManagedModel
from warmserve.pool.manager import PoolManager
from warmserve.pool.stream import RequestStream
from warmserve.pool.supervisor import STOP_BOUND_S, ModelPool
from warmserve.protocol import ModelState

__all__ = [
    "STOP_BOUND_S",
    "AdapterModel",
    "ManagedModel",
    "ModelPool",
    "ModelState",
    "Pool",
    "PoolEvent",
    "PoolFactory",
    "PoolManager",
    "RequestStream",
    "Snapshot",
    "StateChanged",
    "WorkerEvent",
    "WorkerStatus",
]

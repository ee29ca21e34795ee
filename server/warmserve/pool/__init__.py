"""The worker pool: supervisors, worker processes and the messages between them."""

from warmserve.pool.base import Pool, PoolFactory
from warmserve.pool.managed import ManagedModel
from warmserve.pool.manager import PoolManager
from warmserve.pool.stream import RequestStream
from warmserve.pool.supervisor import STOP_BOUND_S, ModelPool
from warmserve.protocol import ModelState

__all__ = [
    "STOP_BOUND_S",
    "ManagedModel",
    "ModelPool",
    "ModelState",
    "Pool",
    "PoolFactory",
    "PoolManager",
    "RequestStream",
]

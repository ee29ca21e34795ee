"""The worker pool: supervisors, worker processes and the messages between them."""

from warmserve.pool.manager import PoolManager
from warmserve.pool.stream import RequestStream
from warmserve.pool.supervisor import STOP_BOUND_S, ModelPool

__all__ = ["STOP_BOUND_S", "ModelPool", "PoolManager", "RequestStream"]

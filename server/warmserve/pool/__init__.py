"""The worker pool: supervisors, worker processes and the messages between them."""

from warmserve.pool.manager import PoolManager
from warmserve.pool.stream import RequestStream
from warmserve.pool.supervisor import ModelPool

__all__ = ["ModelPool", "PoolManager", "RequestStream"]

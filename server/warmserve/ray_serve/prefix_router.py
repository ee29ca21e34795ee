"""Prefix-aware routing across a model's Ray Serve replicas: the local pool's rule, in Serve's request router.

Each replica is one worker with its own slots and prompt cache, so a request whose prompt begins like an
earlier one (a shared system prompt, a conversation's next turn) is fastest on the replica that ran it. Serve
lets a deployment route with a class of its own (`RequestRouterConfig`); this one names prompts by the same
chained block hashes and chooses by the same `PrefixRouter` as the single-machine supervisor
(pool/prefix_routing.py), with Serve's cached queue lengths as the load: the replica holding the longest
prefix unless it runs more than `slack` requests beyond the least loaded, else the least loaded. It ranks
the rest after it, so when the chosen replica refuses (its `max_ongoing_requests` reached) Serve sends the
request to the next. Calls other than generation (tokenize, embed) keep Serve's default order.
"""

from __future__ import annotations

from typing import Any

from ray.serve.request_router import (  # type: ignore[attr-defined]  # re-exported without __all__
    PendingRequest,
    ReplicaID,
    ReplicaResult,
    RequestRouter,
    RunningReplica,
)

from warmserve.generation import GenerationRequest
from warmserve.pool.prefix_routing import PrefixRouter, prefix_blocks


def _generation(pending: PendingRequest | None) -> GenerationRequest | None:
    if pending is None or not pending.args or not isinstance(pending.args[0], GenerationRequest):
        return None
    return pending.args[0]


class PrefixReplicaRouter(RequestRouter):
    """Serve's request router for a model deployment (see the module docstring)."""

    def initialize_state(self, slack: int = 2, slot_tokens: int = 4096, **_: Any) -> None:
        self._prefix = PrefixRouter(slack, slot_tokens)

    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica], pending_request: PendingRequest | None = None
    ) -> list[list[RunningReplica]]:
        request = _generation(pending_request)
        if request is None or not candidate_replicas:
            return [candidate_replicas]
        by_id = {replica.replica_id: replica for replica in candidate_replicas}

        def running(replica_id: ReplicaID) -> int:
            return int(self.replica_queue_len_cache.get(replica_id) or 0)

        chosen = self._prefix.choose(
            list(by_id), prefix_blocks(request), running, lambda replica_id: (running(replica_id),)
        )
        return [[by_id[chosen]], [replica for replica in candidate_replicas if replica.replica_id != chosen]]

    def on_request_routed(self, pending_request: PendingRequest, replica_id: ReplicaID, result: ReplicaResult) -> None:
        request = _generation(pending_request)
        if request is not None:
            self._prefix.sent(replica_id, prefix_blocks(request))

    def on_replica_actor_died(self, replica_id: ReplicaID) -> None:
        super().on_replica_actor_died(replica_id)
        self._prefix.forget(replica_id)

"""A model's state as an explicit state machine that announces every change."""

from __future__ import annotations

from collections.abc import Container

from warmserve.pool.events import TRANSITIONS, Publish, StateChanged
from warmserve.pool.watch import Watched
from warmserve.protocol import ModelState


class InvalidTransition(RuntimeError):
    """A pool tried a state change the machine does not allow: a bug, not a user error."""


class Lifecycle:
    def __init__(self, model: str, publish: Publish, state: ModelState = "unloaded") -> None:
        self._model = model
        self._publish = publish
        self._state: Watched[ModelState] = Watched(state)
        self.reason: str | None = None  # why the last change happened, when it was bad news

    @property
    def state(self) -> ModelState:
        return self._state.value

    def move(self, state: ModelState, reason: str | None = None) -> None:
        """Change state and publish the change; in the same state only the reason is updated."""
        previous = self._state.value
        if state == previous:
            self.reason = reason if reason is not None else self.reason
            return
        if state not in TRANSITIONS[previous]:
            raise InvalidTransition(f"model {self._model}: {previous} -> {state} is not a valid change")
        self.reason = reason
        self._state.set(state)
        self._publish(StateChanged(self._model, state, previous, reason))

    async def wait_for(self, states: Container[ModelState], timeout_s: float | None = None) -> ModelState:
        """The state once it is one of `states`, or the state when `timeout_s` runs out."""
        return await self._state.wait_for(lambda state: state in states, timeout_s)

    async def wait_while(self, states: Container[ModelState], timeout_s: float | None = None) -> ModelState:
        """The first state outside `states`, or the state when `timeout_s` runs out."""
        return await self._state.wait_for(lambda state: state not in states, timeout_s)


class Stateful:
    """What a pool (or a managed model) answers from its `Lifecycle`."""

    _lifecycle: Lifecycle

    @property
    def state(self) -> ModelState:
        return self._lifecycle.state

    @property
    def reason(self) -> str | None:
        """Why the state is what it is, when that is bad news (unhealthy: the load error)."""
        return self._lifecycle.reason

    async def wait_for(self, states: Container[ModelState], timeout_s: float | None = None) -> ModelState:
        """The state once it is one of `states` (or the state at the timeout); woken by the change, not a poll."""
        return await self._lifecycle.wait_for(states, timeout_s)

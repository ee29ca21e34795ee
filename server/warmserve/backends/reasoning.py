"""A reasoning model inside an engine: its markers, a request's prompt, and its thinking budget.

Markers come from the model spec, else from the chat template (a template that writes or
strips a `</think>` block belongs to a model that thinks), else from the vocabulary (markers
that are tokens of their own). A request's thinking is turned
on or off through the template's own switch where it has one (`enable_thinking`, as Qwen3
and SmolLM3 name it; `reasoning_effort` is passed to templates that read it), and then the
prompt is made to say so whatever the template did:

- thinking off (budget 0): the prompt ends with a closed, empty block, so the model answers;
- thinking on with a grammar (JSON schema, tools): the prompt ends inside an open block, so
  the model thinks freely and the grammar applies from the first token after the block;
- otherwise the prompt is left as the template wrote it, and the model may open a block.

`Thinking` follows one request's output token by token (with the same splitter the API
process uses): it counts the thinking tokens and, once a budget is spent, hands the engine
the tokens that close the block, which the engine feeds instead of sampling.
`GatedConstraint` is the request's grammar, paused while the model thinks.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from warmserve.errors import InvalidRequest
from warmserve.generation import GenerationRequest
from warmserve.model_options import ReasoningOptions
from warmserve.reasoning import ReasoningSplitter, ReasoningStart

if TYPE_CHECKING:  # llguidance stays out of the API process, which imports this through backends/tokens.py
    from warmserve.backends.constraints import TokenConstraint

# Open and close markers of the thinking blocks models write, most common first.
KNOWN_MARKERS = (
    ("<think>", "</think>"),
    ("<thinking>", "</thinking>"),
    ("[THINK]", "[/THINK]"),
    ("<|START_THINKING|>", "<|END_THINKING|>"),
)
THINKING_SWITCH = "enable_thinking"
EFFORT_VARIABLE = "reasoning_effort"


@dataclass(frozen=True)
class ReasoningModel:
    """A model that thinks: its markers and which of the known template variables its template reads."""

    open: str
    close: str
    variables: frozenset[str] = frozenset()

    @classmethod
    def detect(
        cls, options: ReasoningOptions, template: str, single_token: Callable[[str], bool]
    ) -> ReasoningModel | None:
        """The spec's markers, else the first known pair the chat template handles, else the first
        the vocabulary has as single tokens (a fine-tune whose template lost them); None: no thinking."""
        if not options.parse:
            return None
        variables = frozenset(name for name in (THINKING_SWITCH, EFFORT_VARIABLE) if name in template)
        if options.markers is not None:
            return cls(options.markers[0], options.markers[1], variables)
        for open_marker, close_marker in KNOWN_MARKERS:
            if close_marker in template:
                return cls(open_marker, close_marker, variables)
        for open_marker, close_marker in KNOWN_MARKERS:
            if single_token(open_marker) and single_token(close_marker):
                return cls(open_marker, close_marker, variables)
        return None


@dataclass(frozen=True)
class ChatPlan:
    """How one chat request is rendered and where its output starts."""

    variables: dict[str, Any]  # extra template variables
    budget: int | None  # thinking tokens allowed; None: no limit


def chat_plan(model: ReasoningModel | None, request: GenerationRequest, default_budget: int | None) -> ChatPlan:
    """The template variables (the request's chat_template_kwargs win) and the thinking budget."""
    variables = _template_kwargs(request)
    reasoning = request.reasoning
    if model is None:
        if reasoning is not None and reasoning.budget != 0:
            raise InvalidRequest(
                f"This model does not think (no reasoning markers in its chat template), so '{reasoning.param}' "
                "cannot turn thinking on; set the markers in the model's spec (reasoning.markers) if it has them.",
                param=reasoning.param,
            )
        return ChatPlan(variables, None)
    budget = default_budget if reasoning is None else reasoning.budget
    if variables.get(THINKING_SWITCH) is False:
        budget = 0
    own: dict[str, Any] = {}
    if THINKING_SWITCH in model.variables and (reasoning is not None or budget == 0):
        own[THINKING_SWITCH] = budget != 0
    if EFFORT_VARIABLE in model.variables and reasoning is not None and reasoning.effort is not None:
        own[EFFORT_VARIABLE] = reasoning.effort
    return ChatPlan({**own, **variables}, budget)


def _template_kwargs(request: GenerationRequest) -> dict[str, Any]:
    if request.template_kwargs is None:
        return {}
    kwargs: dict[str, Any] = json.loads(request.template_kwargs)
    return kwargs


def shape_prompt(model: ReasoningModel, text: str, budget: int | None, constrained: bool) -> tuple[str, ReasoningStart]:
    """The rendered prompt, made to open or close the thinking block as the request needs (see above)."""
    inside = text.rfind(model.open) > text.rfind(model.close)
    if budget == 0:
        if inside:
            return text + "\n" + model.close + "\n\n", ReasoningStart(model.open, model.close, "answer")
        if text.rstrip().endswith(model.close):
            return text, ReasoningStart(model.open, model.close, "answer")
        return text + f"{model.open}\n\n{model.close}\n\n", ReasoningStart(model.open, model.close, "answer")
    if inside:
        return text, ReasoningStart(model.open, model.close, "thinking")
    if constrained:
        return text + model.open + "\n", ReasoningStart(model.open, model.close, "thinking")
    return text, ReasoningStart(model.open, model.close, "start")


class Thinking:
    """One request's place in its thinking block, token by token, and the close a spent budget forces.

    The close is fed as the tokens of "\\n" + close marker + "\\n\\n", the way the model would
    write it; a resumed request replays its drawn tokens through `accept` like any others, so a
    close cut off half-way goes on where it stopped. It reads the same bytes the client's text is
    made of, so it splits where the API process does.
    """

    def __init__(
        self, start: ReasoningStart, budget: int | None, close_tokens: list[int], answer_required: bool
    ) -> None:
        self._splitter = ReasoningSplitter(start)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._budget = budget
        self._close_tokens = close_tokens
        self._answer_required = answer_required  # a grammar waits for the answer: the model may not end inside
        self._forcing: list[int] = []
        self.reasoning_tokens = 0

    @property
    def inside(self) -> bool:
        """Whether the next token is still thinking (or may open a block, or closes one): no grammar applies."""
        return self._splitter.phase != "answer" or bool(self._forcing)

    def forced(self) -> int | None:
        """The token the engine must feed next instead of sampling, while a spent budget closes the block."""
        return self._forcing[0] if self._forcing else None

    def instead_of_end(self) -> int | None:
        """The token to feed instead of an end of generation sampled inside the block, when an answer
        must follow it (a grammar waits); None: the end stands."""
        if not self._answer_required or self._splitter.phase == "answer":
            return None
        if not self._forcing:
            self._forcing = list(self._close_tokens)
        return self._forcing[0]

    def accept(self, token: int, piece: bytes) -> None:
        """Follow one output token (sampled, forced or replayed) and its bytes as the client gets them."""
        before = self._splitter.phase
        if self._forcing and self._forcing[0] == token:
            self._forcing.pop(0)
        self._splitter.feed(self._decoder.decode(piece))
        after = self._splitter.phase
        if before == "thinking" or after == "thinking":
            self.reasoning_tokens += 1
        spent = self._budget is not None and self.reasoning_tokens >= self._budget
        if after == "thinking" and spent and not self._forcing:
            self._forcing = list(self._close_tokens)


def next_token(thinking: Thinking | None, sample: Callable[[], int], is_end: Callable[[int], bool]) -> tuple[int, bool]:
    """The next token of a request, and whether the engine must feed it to its sampler as drawn elsewhere:
    sampled, or the one a thinking block's close forces (a spent budget, or an end sampled inside the
    block when an answer must follow it)."""
    forced = None if thinking is None else thinking.forced()
    if forced is not None:
        return forced, True
    token = sample()
    if thinking is None or not is_end(token):
        return token, False
    forced = thinking.instead_of_end()
    return (token, False) if forced is None else (forced, True)


class OutputGrammar(Protocol):
    """What an engine asks of a request's grammar (TokenConstraint, or one gated by thinking)."""

    @property
    def active(self) -> bool: ...

    def allowed(self) -> np.ndarray[Any, np.dtype[np.bool_]]: ...

    def mask(self, logits: np.ndarray[Any, np.dtype[np.float32]]) -> None: ...

    def accept(self, token: int) -> None: ...


class GatedConstraint:
    """A request's grammar that starts after the thinking block: it neither masks nor follows the
    tokens of the thinking (including the ones that close it)."""

    def __init__(self, constraint: TokenConstraint, thinking: Thinking) -> None:
        self._constraint = constraint
        self._thinking = thinking

    @property
    def active(self) -> bool:
        return not self._thinking.inside

    def allowed(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        return self._constraint.allowed()

    def mask(self, logits: np.ndarray[Any, np.dtype[np.float32]]) -> None:
        if self.active:
            self._constraint.mask(logits)

    def accept(self, token: int) -> None:
        if self.active:
            self._constraint.accept(token)


def gated(constraint: TokenConstraint | None, thinking: Thinking | None) -> OutputGrammar | None:
    """The grammar as the engine applies it: paused while the request thinks."""
    if constraint is None or thinking is None:
        return constraint
    return GatedConstraint(constraint, thinking)


def close_text(model: ReasoningModel) -> str:
    """What a spent budget makes the model write."""
    return "\n" + model.close + "\n\n"

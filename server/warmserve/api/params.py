"""From a validated OpenAI request to the engine-neutral GenerationRequest."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Protocol

from warmserve.api.generations import Collected
from warmserve.api.sampling import sampling_fields
from warmserve.api.speculative import speculation
from warmserve.api.structured import OutputPlan
from warmserve.config import ModelSpec, Task, UnsupportedPolicy
from warmserve.errors import InvalidRequest, UnsupportedParameter
from warmserve.generation import (
    ChatMessage,
    Effort,
    Finished,
    GenerationRequest,
    ReasoningRequest,
    SamplingParams,
    ToolCallData,
)
from warmserve.model_options import ReasoningOptions
from warmserve.protocol import (
    ChatCompletionRequest,
    ChatMessageIn,
    CompletionRequest,
    CompletionTokensDetails,
    PromptTokensDetails,
    SamplingFields,
    Usage,
)

# What OpenAI generates for a completion that names no max_tokens (also when it sends null).
OPENAI_COMPLETION_DEFAULT = 16


IGNORED_HEADER = "X-Warmserve-Ignored-Parameters"


class ReportsUnsupported(Protocol):
    """A request body that can name the parameters it sent which this server does not support."""

    def unsupported_sent(self) -> list[str]: ...


def unsupported(body: ReportsUnsupported, policy: UnsupportedPolicy) -> list[str]:
    """Parameters this server does not support: a 400 naming them, or (policy "ignore") their names.

    Never silently dropped: ignored names go back to the client in IGNORED_HEADER.
    """
    names = body.unsupported_sent()
    if names and policy == "reject":
        raise UnsupportedParameter(
            f"The parameter '{names[0]}' is not supported by this server"
            + (f" (also unsupported here: {', '.join(names[1:])})." if len(names) > 1 else ".")
            + " A server started with --unsupported-parameters ignore drops such parameters instead.",
            param=names[0],
        )
    return names


def _require_stream_for_options(body: SamplingFields) -> None:
    if body.stream_options is not None and not body.stream:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is true.", param="stream_options"
        )


def ignored_header(names: list[str]) -> dict[str, str]:
    return {IGNORED_HEADER: ", ".join(names)} if names else {}


def sampling(
    body: SamplingFields, spec: ModelSpec, max_tokens: int | None, logprobs: int | None = None
) -> SamplingParams:
    """OpenAI's defaults where neither the request nor the model's `sampling` defaults set a value."""
    return SamplingParams(
        max_tokens=max_tokens,
        stop=body.stop_sequences(),
        seed=body.seed,
        logprobs=logprobs,
        logit_bias=body.token_bias(),
        **sampling_fields(body, spec),
    )


def chat_logprobs_count(body: ChatCompletionRequest) -> int | None:
    """How many alternatives per token the engine reports; None: no logprobs at all."""
    if body.top_logprobs is not None and not body.logprobs:
        raise InvalidRequest("'top_logprobs' needs 'logprobs' set to true.", param="top_logprobs")
    return (body.top_logprobs or 0) if body.logprobs else None


def chat_requests(
    body: ChatCompletionRequest, spec: ModelSpec, max_messages: int, plan: OutputPlan
) -> list[GenerationRequest]:
    """One generation per choice (`n`)."""
    _require_stream_for_options(body)
    require_few_messages(len(body.messages), max_messages, "messages")
    messages = chat_messages(body.messages)
    params = sampling(body, spec, body.output_limit(), chat_logprobs_count(body))
    kwargs = None if body.chat_template_kwargs is None else json.dumps(body.chat_template_kwargs)
    drafts = speculation(body.speculative, spec)
    return [
        GenerationRequest(
            messages=messages,
            sampling=choice,
            stream=body.stream,
            tools=plan.tools_json,
            constraint=plan.constraint,
            reasoning=effort_request(body.reasoning_effort, spec.reasoning, "reasoning_effort"),
            template_kwargs=kwargs,
            speculative=drafts,
        )
        for choice in _per_choice(params, body.n)
    ]


def effort_request(effort: Effort | None, options: ReasoningOptions, param: str) -> ReasoningRequest | None:
    """A reasoning effort as the thinking budget the model's spec gives that level; None: the model's default."""
    if effort is None:
        return None
    return ReasoningRequest(budget=options.effort_budgets[effort], effort=effort, param=param)


def require_few_messages(count: int, limit: int, param: str) -> None:
    """A conversation longer than --max-messages is a 400 (in any API: chat, Messages, Responses)."""
    if count > limit:
        raise InvalidRequest(f"Too many messages: {count}; this server accepts at most {limit}.", param=param)


def chat_messages(messages: Sequence[ChatMessageIn]) -> tuple[ChatMessage, ...]:
    """Engine-neutral messages; a tool result gets the name of the function whose call it answers."""
    called: dict[str, str] = {}
    out: list[ChatMessage] = []
    for m in messages:
        calls = tuple(ToolCallData(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or ())
        called.update((c.id, c.name) for c in calls)
        out.append(
            ChatMessage(
                role="system" if m.role == "developer" else m.role,
                content=m.text(),
                tool_calls=calls,
                tool_call_id=m.tool_call_id,
                name=called.get(m.tool_call_id) if m.tool_call_id else None,
            )
        )
    return tuple(out)


def completion_requests(body: CompletionRequest, spec: ModelSpec) -> list[GenerationRequest]:
    _require_stream_for_options(body)
    prompts = body.prompts()
    if not prompts:
        raise InvalidRequest("The 'prompt' list is empty.", param="prompt")
    if body.echo and body.logprobs is not None:
        raise InvalidRequest(
            "'echo' together with 'logprobs' would need the prompt's logprobs, which this server does not "
            "compute; send one of them.",
            param="echo",
        )
    candidates = body.candidates()
    if candidates < body.n:
        raise InvalidRequest(f"'best_of' ({candidates}) must be at least 'n' ({body.n}).", param="best_of")
    if candidates > body.n and body.stream:
        raise InvalidRequest("'best_of' greater than 'n' cannot be streamed: the best are known at the end.", "best_of")
    limit = body.max_tokens if body.max_tokens is not None else OPENAI_COMPLETION_DEFAULT
    # Ranking the candidates needs each token's logprob, whether or not the client asked for them.
    logprobs = body.logprobs if candidates == body.n else (body.logprobs or 0)
    params = sampling(body, spec, limit, logprobs)
    suffix = body.suffix or None  # "" is OpenAI's "no suffix"
    drafts = speculation(body.speculative, spec)
    return [
        GenerationRequest(prompt=prompt, sampling=choice, stream=body.stream, suffix=suffix, speculative=drafts)
        if isinstance(prompt, str)
        else GenerationRequest(
            prompt_tokens=tuple(prompt), sampling=choice, stream=body.stream, suffix=suffix, speculative=drafts
        )
        for prompt in prompts
        for choice in _per_choice(params, candidates)
    ]


def best_of(results: Sequence[Collected], candidates: int, n: int) -> list[Collected]:
    """Of each prompt's `candidates` generations, the `n` with the highest mean logprob per token, best first."""
    if candidates == n:
        return list(results)

    def score(result: Collected) -> float:
        return sum(lp.logprob for lp in result.logprobs) / max(len(result.logprobs), 1)

    groups = [results[i : i + candidates] for i in range(0, len(results), candidates)]
    return [best for group in groups for best in sorted(group, key=score, reverse=True)[:n]]


def _per_choice(params: SamplingParams, n: int) -> list[SamplingParams]:
    """`n` copies; a seeded request seeds choice i with seed + i, so choices differ yet repeat."""
    if params.seed is None:
        return [params] * n
    return [dataclasses.replace(params, seed=params.seed + i) for i in range(n)]


def usage_of(finished: Sequence[Finished], choices_per_prompt: int = 1) -> Usage:
    """Token counts of the generations of a request, in choice order, OpenAI-shaped.

    As OpenAI counts it, a prompt answered with n choices counts its prompt tokens once.
    """
    firsts = finished[::choices_per_prompt]
    prompt = sum(f.prompt_tokens for f in firsts)
    cached = sum(f.cached_tokens for f in firsts)
    completion = sum(f.completion_tokens for f in finished)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=sum(f.reasoning_tokens for f in finished)),
    )


def require_task(spec: ModelSpec, task: Task) -> None:
    """A model asked for what it does not do (chat with an embedding model, or the reverse) is a 400."""
    if task not in spec.effective_tasks():
        does = " and ".join(spec.effective_tasks())
        other = "/v1/embeddings" if task == "generate" else "the routes that generate text"
        raise InvalidRequest(
            f"The model '{spec.name}' does not {task}: it serves only {does} (ask it through {other}).",
            param="model",
        )

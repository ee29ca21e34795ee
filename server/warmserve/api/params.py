"""From a validated OpenAI request to the engine-neutral GenerationRequest."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from warmserve.api.structured import OutputPlan
from warmserve.errors import InvalidRequest, UnsupportedParameter
from warmserve.generation import ChatMessage, Finished, GenerationRequest, SamplingParams, ToolCallData
from warmserve.protocol import (
    ChatCompletionRequest,
    ChatMessageIn,
    CompletionRequest,
    PromptTokensDetails,
    SamplingFields,
    Usage,
)

# What OpenAI generates for a completion that names no max_tokens (also when it sends null).
OPENAI_COMPLETION_DEFAULT = 16


def reject_unsupported(body: SamplingFields) -> None:
    """A parameter we would otherwise ignore is a 400 that names it, never silently dropped."""
    unsupported = body.unsupported_parameters()
    if unsupported:
        name = unsupported[0]
        raise UnsupportedParameter(
            f"The parameter '{name}' is not supported by this server"
            + (f" (also unsupported here: {', '.join(unsupported[1:])})." if len(unsupported) > 1 else "."),
            param=name,
        )
    if body.stream_options is not None and not body.stream:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is true.", param="stream_options"
        )


def sampling(body: SamplingFields, max_tokens: int | None) -> SamplingParams:
    return SamplingParams(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        max_tokens=max_tokens,
        stop=body.stop_sequences(),
        seed=body.seed,
        presence_penalty=body.presence_penalty or 0.0,
        frequency_penalty=body.frequency_penalty or 0.0,
    )


def chat_requests(body: ChatCompletionRequest, max_messages: int, plan: OutputPlan) -> list[GenerationRequest]:
    """One generation per choice (`n`)."""
    reject_unsupported(body)
    if len(body.messages) > max_messages:
        raise InvalidRequest(
            f"Too many messages: {len(body.messages)}; this server accepts at most {max_messages}.",
            param="messages",
        )
    messages = chat_messages(body.messages)
    return [
        GenerationRequest(
            messages=messages, sampling=choice, stream=body.stream, tools=plan.tools_json, constraint=plan.constraint
        )
        for choice in _per_choice(sampling(body, body.output_limit()), body.n)
    ]


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


def completion_requests(body: CompletionRequest) -> list[GenerationRequest]:
    reject_unsupported(body)
    prompts = body.prompts()
    if not prompts:
        raise InvalidRequest("The 'prompt' list is empty.", param="prompt")
    limit = body.max_tokens if body.max_tokens is not None else OPENAI_COMPLETION_DEFAULT
    params = sampling(body, limit)
    return [
        GenerationRequest(prompt=prompt, sampling=choice, stream=body.stream)
        for prompt in prompts
        for choice in _per_choice(params, body.n)
    ]


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
    )

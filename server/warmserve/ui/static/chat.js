// One streamed chat completion: the request body from the settings, and the answer as it arrives.
//
// The answer keeps what the page shows: text, reasoning (delta.reasoning_content), tool calls
// (assembled from their deltas), finish reason, usage (stream_options.include_usage) and the times
// that make time to first token and tokens/s. Aborting the signal closes the connection; the
// server then cancels the request in its worker.

import { streamEvents } from "./api.js";

const NUMBERS = [
  "temperature", "top_p", "max_tokens", "seed", "presence_penalty", "frequency_penalty",
  "top_k", "min_p", "typical_p", "repetition_penalty", "top_logprobs",
];

// The request body for `messages` with one lane's settings; unset fields are left out (the model's defaults).
export function chatBody(settings, messages, system) {
  const body = { model: settings.model, messages: [], stream: true, stream_options: { include_usage: true } };
  if (system && system.trim()) body.messages.push({ role: "system", content: system });
  for (const message of messages) {
    const out = { role: message.role, content: message.content ?? "" };
    if (message.tool_calls && message.tool_calls.length) out.tool_calls = message.tool_calls;
    body.messages.push(out);
  }
  for (const name of NUMBERS) {
    const value = settings[name];
    if (value !== "" && value !== undefined && value !== null && !Number.isNaN(Number(value))) body[name] = Number(value);
  }
  if (body.top_logprobs !== undefined && !settings.logprobs) delete body.top_logprobs;
  const stop = (settings.stop || "").split("\n").filter((s) => s.length);
  if (stop.length) body.stop = stop;
  if (settings.logprobs) body.logprobs = true;
  if (settings.reasoning_effort) body.reasoning_effort = settings.reasoning_effort;
  if (settings.json_schema && settings.json_schema.trim()) {
    const schema = JSON.parse(settings.json_schema);
    body.response_format = { type: "json_schema", json_schema: { name: "answer", schema } };
  }
  if (settings.tools && settings.tools.trim()) {
    const tools = JSON.parse(settings.tools);
    body.tools = Array.isArray(tools) ? tools : [tools];
    if (settings.tool_choice) body.tool_choice = settings.tool_choice;
  }
  return body;
}

export function newAnswer(model) {
  return {
    role: "assistant", model, content: "", reasoning: "", tool_calls: [], finish: null, usage: null,
    error: null, startedAt: performance.now(), firstAt: null, endedAt: null, streaming: true,
  };
}

function mergeToolCalls(calls, deltas) {
  for (const delta of deltas) {
    const index = delta.index ?? calls.length;
    const call = (calls[index] ||= { id: "", type: "function", function: { name: "", arguments: "" } });
    if (delta.id) call.id = delta.id;
    if (delta.function?.name) call.function.name += delta.function.name;
    if (delta.function?.arguments) call.function.arguments += delta.function.arguments;
  }
}

// Stream `body` into `answer`, calling onUpdate() after each change; resolves when the stream ends.
export async function streamChat(body, answer, signal, onUpdate) {
  const seen = () => {
    if (answer.firstAt === null) answer.firstAt = performance.now();
  };
  try {
    await streamEvents("/v1/chat/completions", {
      method: "POST",
      body,
      signal,
      onEvent(_name, data) {
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) {
          answer.error = chunk.error.message || JSON.stringify(chunk.error);
          return;
        }
        if (chunk.usage) answer.usage = chunk.usage;
        for (const choice of chunk.choices || []) {
          const delta = choice.delta || {};
          if (delta.content) {
            seen();
            answer.content += delta.content;
          }
          if (delta.reasoning_content) {
            seen();
            answer.reasoning += delta.reasoning_content;
          }
          if (delta.tool_calls) {
            seen();
            mergeToolCalls(answer.tool_calls, delta.tool_calls);
          }
          if (choice.finish_reason) answer.finish = choice.finish_reason;
        }
        onUpdate();
      },
    });
  } catch (error) {
    if (error.name === "AbortError") answer.finish = answer.finish || "stopped";
    else answer.error = error.message;
  } finally {
    answer.endedAt = performance.now();
    answer.streaming = false;
    onUpdate();
  }
}

// What the stats line under an answer says.
export function answerStats(answer) {
  const stats = [];
  const usage = answer.usage;
  if (usage) {
    stats.push(`${usage.completion_tokens} tokens`);
    stats.push(`prompt ${usage.prompt_tokens}`);
    const cached = usage.prompt_tokens_details?.cached_tokens;
    if (cached !== undefined && cached !== null) stats.push(`cached ${cached}`);
  }
  if (answer.firstAt !== null) stats.push(`TTFT ${((answer.firstAt - answer.startedAt) / 1000).toFixed(2)} s`);
  if (usage && answer.firstAt !== null && answer.endedAt !== null && usage.completion_tokens > 1) {
    const seconds = (answer.endedAt - answer.firstAt) / 1000;
    if (seconds > 0) stats.push(`${((usage.completion_tokens - 1) / seconds).toFixed(1)} tok/s`);
  }
  if (answer.finish) stats.push(`finish: ${answer.finish}`);
  return stats;
}

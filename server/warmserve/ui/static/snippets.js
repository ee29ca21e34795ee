// "Copy as": the current chat request as curl, the openai client, or LangChain's ChatWarmServe.
// The key is never written into a snippet: each reads it from the environment.

const OPENAI_ARGS = new Set([
  "temperature", "top_p", "max_tokens", "seed", "presence_penalty", "frequency_penalty", "stop",
  "logprobs", "top_logprobs", "response_format", "tools", "tool_choice", "reasoning_effort",
]);
const LANGCHAIN_ARGS = new Set([
  "temperature", "top_p", "max_tokens", "seed", "presence_penalty", "frequency_penalty", "stop",
  "top_k", "min_p", "typical_p", "repetition_penalty", "reasoning_effort",
]);

function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

// A JSON value written as a Python literal (true/false/null become True/False/None).
export function python(value, indent = "") {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  const inner = `${indent}    `;
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return `[\n${value.map((v) => inner + python(v, inner)).join(",\n")},\n${indent}]`;
  }
  const entries = Object.entries(value);
  if (!entries.length) return "{}";
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${python(v, inner)}`).join(",\n")},\n${indent}}`;
}

export function curl(body, origin) {
  const json = JSON.stringify(body, null, 2);
  return [
    `curl -N ${origin}/v1/chat/completions \\`,
    `  -H "Authorization: Bearer $WARMSERVE_API_KEY" \\`,
    "  -H 'Content-Type: application/json' \\",
    `  -d ${shellQuote(json)}`,
  ].join("\n");
}

export function openaiPython(body, origin) {
  const args = [`    model=${python(body.model)},`, `    messages=${python(body.messages, "    ")},`];
  const extra = {};
  for (const [name, value] of Object.entries(body)) {
    if (["model", "messages", "stream", "stream_options"].includes(name)) continue;
    if (OPENAI_ARGS.has(name)) args.push(`    ${name}=${python(value, "    ")},`);
    else extra[name] = value;
  }
  if (Object.keys(extra).length) args.push(`    extra_body=${python(extra, "    ")},`);
  args.push("    stream=True,", '    stream_options={"include_usage": True},');
  return [
    "import os",
    "",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url="${origin}/v1", api_key=os.environ.get("WARMSERVE_API_KEY", "unused"))`,
    "stream = client.chat.completions.create(",
    ...args,
    ")",
    "for chunk in stream:",
    "    if chunk.choices and chunk.choices[0].delta.content:",
    '        print(chunk.choices[0].delta.content, end="", flush=True)',
    "    elif chunk.usage:",
    '        print("\\n", chunk.usage)',
  ].join("\n");
}

export function langchain(body, origin) {
  const args = [`    model=${python(body.model)},`, `    base_url="${origin}/v1",`];
  const extra = {};
  for (const [name, value] of Object.entries(body)) {
    if (["model", "messages", "stream", "stream_options", "tools", "tool_choice", "response_format"].includes(name)) continue;
    if (LANGCHAIN_ARGS.has(name)) args.push(`    ${name}=${python(value, "    ")},`);
    else extra[name] = value;
  }
  if (Object.keys(extra).length) args.push(`    model_kwargs=${python(extra, "    ")},`);
  const roles = { system: "system", user: "human", assistant: "ai", tool: "tool" };
  const messages = body.messages.map((m) => `    (${python(roles[m.role] || m.role)}, ${python(m.content ?? "")}),`);
  const lines = [
    "# pip install langchain-warmserve; the key comes from WARMSERVE_API_KEY",
    "from langchain_warmserve import ChatWarmServe",
    "",
    "model = ChatWarmServe(",
    ...args,
    ")",
  ];
  const choice = body.tool_choice ? `, tool_choice=${python(body.tool_choice)}` : "";
  if (body.tools) lines.push(`model = model.bind_tools(${python(body.tools)}${choice})`);
  lines.push("messages = [", ...messages, "]");
  const schema = body.response_format?.json_schema?.schema;
  if (schema) {
    lines.push(`structured = model.with_structured_output(${python(schema)}, method="json_schema")`);
    lines.push("print(structured.invoke(messages))");
  } else if (body.tools) {
    lines.push("print(model.invoke(messages).tool_calls)");
  } else {
    lines.push("for chunk in model.stream(messages):", '    print(chunk.content, end="", flush=True)');
  }
  return lines.join("\n");
}

export const SNIPPETS = { curl, python: openaiPython, langchain };

// One lane's request settings (model and sampling), as a form built from the model's capabilities.
//
// Controls appear only for what the chosen model can do, as /v1/models reports it: tools, JSON
// schema, logprobs, and reasoning effort (once a worker has said the model reasons).

const DEFAULTS = {
  model: "", temperature: "0.7", top_p: "", max_tokens: "256", seed: "", stop: "",
  top_k: "", min_p: "", typical_p: "", repetition_penalty: "", presence_penalty: "", frequency_penalty: "",
  logprobs: false, top_logprobs: "", reasoning_effort: "", json_schema: "", tools: "", tool_choice: "",
};

export function defaultSettings(model = "") {
  return { ...DEFAULTS, model };
}

function field(form, name, label, attrs = {}) {
  const wrap = document.createElement("label");
  wrap.textContent = label;
  const input = document.createElement(attrs.rows ? "textarea" : "input");
  input.name = name;
  for (const [key, value] of Object.entries(attrs)) input.setAttribute(key, value);
  wrap.append(input);
  form.append(wrap);
  return input;
}

/** A labelled <select> of `values`; the empty value (the server's default) is shown as `unset`. */
function choices(form, name, label, values, unset) {
  const wrap = document.createElement("label");
  wrap.textContent = label;
  const select = document.createElement("select");
  select.name = name;
  for (const value of values) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = value || unset;
    select.append(option);
  }
  wrap.append(select);
  form.append(wrap);
  return select;
}

function badge(text, kind = "") {
  const node = document.createElement("span");
  node.className = `badge ${kind}`;
  node.textContent = text;
  return node;
}

export function modelLine(card, target) {
  target.replaceChildren();
  if (!card) return;
  const info = document.createElement("div");
  const context = card.context_length ? `${card.context_length} tokens` : "context unknown until loaded";
  info.textContent = `${card.backend} · ${context} · ${card.ready_workers}/${card.workers} workers`;
  const caps = document.createElement("div");
  caps.className = "caps";
  caps.append(badge(card.state, `state-${card.state}`));
  for (const [name, on] of Object.entries(card.capabilities || {})) if (on) caps.append(badge(name));
  if (card.parent) caps.append(badge(`adapter of ${card.parent}`));
  target.append(info, caps);
}

// Build the form for `settings` (mutated as the user edits) inside a fieldset; `models` is /v1/models' data.
export function settingsForm(title, settings, models, onChange) {
  const set = document.createElement("fieldset");
  set.className = "lane-settings";
  const legend = document.createElement("legend");
  legend.textContent = title;
  set.append(legend);

  const modelLabel = document.createElement("label");
  modelLabel.textContent = "Model";
  const select = document.createElement("select");
  select.name = "model";
  const chat = models.filter((m) => m.capabilities?.chat);
  for (const card of chat) {
    const option = document.createElement("option");
    option.value = card.id;
    option.textContent = `${card.id} (${card.state})`;
    select.append(option);
  }
  if (!chat.some((m) => m.id === settings.model)) settings.model = chat[0]?.id || "";
  select.value = settings.model;
  modelLabel.append(select);
  const info = document.createElement("div");
  info.className = "model-info";
  set.append(modelLabel, info);

  const basic = document.createElement("div");
  basic.className = "grid2";
  field(basic, "temperature", "Temperature", { type: "number", step: "0.05", min: "0", max: "2" });
  field(basic, "top_p", "top_p", { type: "number", step: "0.05", min: "0", max: "1", placeholder: "1" });
  field(basic, "max_tokens", "Max tokens", { type: "number", min: "1", step: "1" });
  field(basic, "seed", "Seed", { type: "number", step: "1", placeholder: "random" });
  set.append(basic);
  field(set, "stop", "Stop sequences (one per line)", { rows: "1" });

  const more = document.createElement("details");
  more.className = "more";
  const summary = document.createElement("summary");
  summary.textContent = "More sampling";
  const moreGrid = document.createElement("div");
  moreGrid.className = "grid2";
  field(moreGrid, "top_k", "top_k", { type: "number", step: "1", min: "-1", placeholder: "off" });
  field(moreGrid, "min_p", "min_p", { type: "number", step: "0.01", min: "0", max: "1", placeholder: "0" });
  field(moreGrid, "typical_p", "typical_p", { type: "number", step: "0.05", min: "0", max: "1", placeholder: "1" });
  field(moreGrid, "repetition_penalty", "repetition_penalty", { type: "number", step: "0.05", min: "0", max: "10", placeholder: "1" });
  field(moreGrid, "presence_penalty", "presence_penalty", { type: "number", step: "0.1", min: "-2", max: "2", placeholder: "0" });
  field(moreGrid, "frequency_penalty", "frequency_penalty", { type: "number", step: "0.1", min: "-2", max: "2", placeholder: "0" });
  more.append(summary, moreGrid);
  set.append(more);

  const gated = document.createElement("div");
  set.append(gated);

  const sync = () => {
    for (const input of set.querySelectorAll("input, textarea, select")) {
      if (!(input.name in settings)) continue;
      if (input.type === "checkbox") input.checked = Boolean(settings[input.name]);
      else input.value = settings[input.name] ?? "";
    }
  };

  const renderGated = () => {
    const card = models.find((m) => m.id === settings.model);
    modelLine(card, info);
    gated.replaceChildren();
    const caps = card?.capabilities || {};
    if (caps.logprobs) {
      const row = document.createElement("div");
      row.className = "grid2";
      const check = document.createElement("label");
      check.className = "check";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "logprobs";
      check.append(box, " logprobs");
      row.append(check);
      field(row, "top_logprobs", "top_logprobs", { type: "number", min: "0", max: "20", step: "1" });
      gated.append(row);
    }
    if (caps.reasoning) {
      choices(gated, "reasoning_effort", "Reasoning effort", ["", "none", "minimal", "low", "medium", "high"], "model default");
    }
    if (caps.json_schema) field(gated, "json_schema", "JSON schema of the answer (optional)", { rows: "2", spellcheck: "false", placeholder: '{"type": "object", ...}' });
    if (caps.tools) {
      field(gated, "tools", "Tools (OpenAI function definitions, JSON; optional)", { rows: "2", spellcheck: "false", placeholder: '[{"type": "function", "function": {...}}]' });
      choices(gated, "tool_choice", "Tool choice", ["", "auto", "required", "none"], "default (auto with tools)");
    }
    sync();
  };

  set.addEventListener("input", (event) => {
    const input = event.target;
    if (!input.name) return;
    settings[input.name] = input.type === "checkbox" ? input.checked : input.value;
    if (input.name === "model") renderGated();
    onChange();
  });
  renderGated();
  return set;
}

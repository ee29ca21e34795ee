// The playground: a chat with one model, or the same prompts to two lanes side by side (two models,
// or one model with two settings). History and settings stay in localStorage until cleared.

import { request } from "./api.js";
import { answerStats, chatBody, newAnswer, streamChat } from "./chat.js";
import { renderMarkdown } from "./markdown.js";
import { defaultSettings, settingsForm } from "./settings.js";
import { SNIPPETS } from "./snippets.js";

const STORE = "warmserve.playground";
const $ = (id) => document.getElementById(id);

let models = [];
let state = load();
let controller = null;
const lastBodies = [null, null];

function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORE));
    if (saved && Array.isArray(saved.lanes) && saved.lanes.length === 2) {
      for (const lane of saved.lanes) lane.settings = { ...defaultSettings(), ...lane.settings };
      return saved;
    }
  } catch {
    // a damaged store starts over
  }
  return { compare: false, system: "", lanes: [0, 1].map(() => ({ settings: defaultSettings(), messages: [] })) };
}

function save() {
  const lanes = state.lanes.map((lane) => ({
    settings: lane.settings,
    messages: lane.messages.map(({ role, content, reasoning, tool_calls, finish, usage, error, model, stats }) => ({
      role, content, reasoning, tool_calls, finish, usage, error, model, stats,
    })),
  }));
  localStorage.setItem(STORE, JSON.stringify({ compare: state.compare, system: state.system, lanes }));
}

const active = () => (state.compare ? state.lanes : state.lanes.slice(0, 1));

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(label, onClick, title) {
  const node = el("button", "ghost small", label);
  node.type = "button";
  if (title) node.title = title;
  node.addEventListener("click", onClick);
  return node;
}

// --- rendering -------------------------------------------------------------------------

function renderMessage(lane, index, node) {
  const message = lane.messages[index];
  node.replaceChildren();
  node.className = `msg ${message.role}${message.error ? " error" : ""}`;
  node.dataset.role = message.role;
  const who = el("div", "who", message.role === "user" ? "You" : message.model || "assistant");
  const actions = el("span", "actions");
  const busy = controller !== null;
  if (message.role === "user" && !busy) actions.append(button("Edit", () => editMessage(index, node), "Edit and send again"));
  if (message.role === "assistant" && index === lane.messages.length - 1 && !busy) {
    actions.append(button("Regenerate", () => regenerate(lane)));
  }
  who.append(actions);
  node.append(who);
  if (message.reasoning) {
    const details = el("details", "reasoning");
    details.open = Boolean(message.streaming);
    details.append(el("summary", "", "Reasoning"), el("div", "text", message.reasoning));
    node.append(details);
  }
  const content = el("div", "content");
  if (message.role === "user") {
    content.classList.add("plain");
    content.textContent = message.content;
  } else {
    renderMarkdown(message.content || "", content);
    if (message.streaming) content.classList.add("cursor");
  }
  node.append(content);
  for (const call of message.tool_calls || []) {
    node.append(el("div", "tool-call", `→ call ${call.function.name}(${call.function.arguments})`));
  }
  if (message.error) node.append(el("div", "notice", message.error));
  if (message.role === "assistant") {
    const stats = message.stats || (message.streaming ? [] : answerStats(message));
    if (!message.streaming) message.stats = stats;
    const line = el("div", "stats");
    line.dataset.testid = "stats";
    for (const part of stats) line.append(el("span", "", part));
    node.append(line);
  }
}

function renderLane(lane, index) {
  const box = el("section", "transcript");
  box.id = `transcript-${index}`;
  box.setAttribute("aria-live", "polite");
  if (state.compare) box.append(el("h2", "", `${index ? "B" : "A"} · ${lane.settings.model}`));
  if (!lane.messages.length) box.append(el("div", "empty", "Send a message to start."));
  lane.messages.forEach((_, i) => {
    const node = el("div");
    renderMessage(lane, i, node);
    lane.messages[i].node = node;
    box.append(node);
  });
  return box;
}

export function render() {
  const boxes = $("transcripts");
  boxes.classList.toggle("compare", state.compare);
  boxes.replaceChildren(...active().map(renderLane));
  for (const box of boxes.children) box.scrollTop = box.scrollHeight;
  $("send").hidden = controller !== null;
  $("stop").hidden = controller === null;
}

function renderSettings() {
  const holder = $("lanes-settings");
  holder.replaceChildren(
    ...active().map((lane, i) => settingsForm(state.compare ? `Lane ${i ? "B" : "A"}` : "Model", lane.settings, models, () => {
      save();
      if (state.compare) render();
    })),
  );
}

// Answers changed since the last frame, each re-rendered once per frame however many deltas came.
const pending = new Map();
function scheduleRender(lane, message) {
  if (pending.size === 0) {
    requestAnimationFrame(() => {
      for (const [m, l] of pending) {
        const index = l.messages.indexOf(m);
        if (index >= 0 && m.node) {
          renderMessage(l, index, m.node);
          const box = m.node.parentElement;
          if (box) box.scrollTop = box.scrollHeight;
        }
      }
      pending.clear();
    });
  }
  pending.set(message, lane);
}

// --- sending -----------------------------------------------------------------------------

function history(lane) {
  return lane.messages
    .filter((m) => !m.error && !(m.role === "assistant" && !m.content && !(m.tool_calls || []).length))
    .map((m) => ({ role: m.role, content: m.content, tool_calls: m.tool_calls }));
}

async function answer(lane, laneIndex, signal) {
  let body;
  try {
    body = chatBody(lane.settings, history(lane), state.system);
  } catch (error) {
    lane.messages.push({ role: "assistant", content: "", error: `Settings: ${error.message}`, model: lane.settings.model });
    return;
  }
  lastBodies[laneIndex] = body;
  const message = newAnswer(lane.settings.model);
  lane.messages.push(message);
  render();
  await streamChat(body, message, signal, () => scheduleRender(lane, message));
}

async function run(lanes) {
  controller = new AbortController();
  render();
  try {
    await Promise.all(lanes.map((lane) => answer(lane, state.lanes.indexOf(lane), controller.signal)));
  } finally {
    controller = null;
    save();
    render();
    $("prompt").focus();
  }
}

function send(text) {
  for (const lane of active()) lane.messages.push({ role: "user", content: text });
  return run(active());
}

function regenerate(lane) {
  while (lane.messages.length && lane.messages[lane.messages.length - 1].role === "assistant") lane.messages.pop();
  return run([lane]);
}

function editMessage(index, node) {
  const original = state.lanes[0].messages[index]?.content ?? "";
  const box = el("div", "edit-box");
  const area = el("textarea");
  area.rows = 3;
  area.value = node.querySelector(".content")?.textContent ?? original;
  area.setAttribute("aria-label", "Edited message");
  const row = el("div", "row");
  const resend = () => {
    const text = area.value.trim();
    if (!text) return;
    for (const lane of active()) {
      lane.messages.length = Math.min(index, lane.messages.length);
      lane.messages.push({ role: "user", content: text });
    }
    run(active());
  };
  row.append(button("Send", resend), button("Cancel", () => render()));
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      resend();
    } else if (event.key === "Escape") {
      render();
    }
  });
  box.append(area, row);
  node.querySelector(".content").replaceWith(box);
  area.focus();
}

// --- copy as ------------------------------------------------------------------------------

function currentBody() {
  const lane = state.lanes[0];
  const draft = $("prompt").value.trim();
  const messages = history(lane);
  if (draft) messages.push({ role: "user", content: draft });
  if (!messages.length && lastBodies[0]) return lastBodies[0];
  return chatBody(lane.settings, messages.length ? messages : [{ role: "user", content: "Hello!" }], state.system);
}

function showCopy(kind) {
  let text;
  try {
    text = SNIPPETS[kind](currentBody(), location.origin);
  } catch (error) {
    text = `# ${error.message}`;
  }
  $("copy-code").textContent = text;
  for (const tab of $("copy-tabs").children) tab.setAttribute("aria-selected", String(tab.dataset.kind === kind));
}

// --- setup ----------------------------------------------------------------------------------

export function setModels(list) {
  models = list;
  for (const lane of state.lanes) {
    if (!models.some((m) => m.id === lane.settings.model)) lane.settings.model = models.find((m) => m.capabilities?.chat)?.id || "";
  }
  renderSettings();
  render();
}

export function initPlayground() {
  $("system").value = state.system;
  $("compare").checked = state.compare;
  $("system").addEventListener("input", () => {
    state.system = $("system").value;
    save();
  });
  $("compare").addEventListener("change", () => {
    state.compare = $("compare").checked;
    if (state.compare) {
      const [a, b] = state.lanes;
      b.messages = a.messages.map(({ node, ...message }) => ({ ...message, stats: message.stats && [...message.stats] }));
      if (!b.settings.model) b.settings.model = a.settings.model;
    }
    save();
    renderSettings();
    render();
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("prompt").value.trim();
    if (!text || controller) return;
    $("prompt").value = "";
    send(text);
  });
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => controller?.abort());
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && controller) controller.abort();
  });
  $("clear-history").addEventListener("click", () => {
    for (const lane of state.lanes) lane.messages = [];
    save();
    render();
  });
  $("copy-as").addEventListener("click", () => {
    showCopy("curl");
    $("copy-dialog").showModal();
  });
  for (const tab of $("copy-tabs").children) tab.addEventListener("click", () => showCopy(tab.dataset.kind));
  $("copy-button").addEventListener("click", async () => {
    const text = $("copy-code").textContent;
    try {
      await navigator.clipboard.writeText(text);
      $("copy-button").textContent = "Copied";
    } catch {
      const range = document.createRange();
      range.selectNodeContents($("copy-code"));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      $("copy-button").textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => ($("copy-button").textContent = "Copy"), 1500);
  });
  render();
}

export async function loadModels() {
  const list = await request("GET", "/v1/models");
  setModels(list.data);
  return list.data;
}

// The pool dashboard: one card per model, kept live by the server's feed (/ui/events), never polled.
//
// `stats` frames (every second) carry every model's state, workers, queue and last minute; `state`
// and `worker` events show changes the moment they happen (a drain, a worker that died and was
// restarted) and go to the event log. The feed reconnects by itself with a growing delay. Admin
// actions go to /admin with the key the page holds (an admin key where the server has them).

import { request, streamEvents } from "./api.js";
import { Chart } from "./chart.js";

const $ = (id) => document.getElementById(id);
const cards = new Map();
const lastWorkerEvent = new Map(); // "model/index" -> kind
let running = false;
let generation = 0; // a restart's loop replaces the one before
let retryMs = 500;
let onModelsChanged = () => {};
let modelNames = ""; // the models the last stats named, to tell the page when the set changes

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function log(text) {
  const item = el("li", "", `${new Date().toLocaleTimeString()} ${text}`);
  const list = $("pool-log");
  list.prepend(item);
  while (list.children.length > 200) list.lastChild.remove();
}

function feedState(text, kind) {
  const badge = $("feed-state");
  badge.textContent = text;
  badge.className = `badge ${kind}`;
}

async function admin(method, path, body) {
  try {
    await request(method, path, body, { admin: true });
  } catch (error) {
    log(`${method} ${path} failed: ${error.message}`);
    const notice = $("admin-notice");
    if (notice) notice.textContent = error.message;
  }
}

const fmt = (value, digits = 1, unit = "") => (value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)}${unit}`);

function number(parent, label, key) {
  const box = el("div");
  box.append(el("dt", "", label));
  const value = el("dd", "", "–");
  value.dataset.key = key;
  box.append(value);
  parent.append(box);
  return value;
}

function actionButton(label, className, onClick) {
  const node = el("button", className, label);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

function makeCard(name) {
  const root = el("article", "model-card");
  root.dataset.model = name;
  const head = el("header");
  const state = el("span", "badge");
  state.dataset.testid = "model-state";
  const encoded = encodeURIComponent(name);
  const load = actionButton("Load", "small", () => admin("POST", `/admin/models/${encoded}/load?wait=false`));
  const unload = actionButton("Unload", "small ghost", () => admin("POST", `/admin/models/${encoded}/unload?wait=false`));
  const remove = actionButton("Remove", "small ghost danger", () => {
    if (confirm(`Remove model ${name}? Its requests in flight finish first.`)) admin("DELETE", `/admin/models/${encoded}?wait=false`);
  });
  const actions = el("span", "actions");
  actions.append(load, unload, remove);
  head.append(el("h3", "", name), state, actions);
  const reason = el("p", "notice");
  const numbers = el("dl", "numbers");
  const values = {
    tps: number(numbers, "tokens/s (1 min)", "tokens_per_s"),
    tpsNow: number(numbers, "tokens/s (now)", "tokens_per_s_now"),
    ttft: number(numbers, "TTFT (1 min)", "ttft_s"),
    running: number(numbers, "running", "running"),
    queue: number(numbers, "queue", "waiting"),
    rejected: number(numbers, "rejected (1 min)", "rejected"),
    requests: number(numbers, "requests (1 min)", "requests"),
    cache: number(numbers, "prompt cache hits", "cache_hit_rate"),
  };
  const chart = new Chart();
  const legend = el("div", "legend");
  legend.append(el("span", "tps", "— tokens/s"), el("span", "queue", "- - queue"), chart.scale);
  const table = el("table");
  const headRow = el("tr");
  for (const title of ["worker", "pid", "state", "running / slots", "restarts", "last exit", "last event"]) headRow.append(el("th", "", title));
  const thead = el("thead");
  thead.append(headRow);
  const tbody = el("tbody");
  table.append(thead, tbody);
  const wrap = el("div", "table-wrap");
  wrap.append(table);
  const adapters = el("div", "adapters");
  root.append(head, reason, numbers, chart.node, legend, wrap, adapters);
  const card = { root, state, reason, values, chart, tbody, adapters, load, unload, remove, adapterKey: "" };
  cards.set(name, card);
  $("pool-models").append(root);
  return card;
}

function renderWorkers(card, model) {
  card.tbody.replaceChildren(
    ...model.workers.map((w) => {
      const row = el("tr");
      row.dataset.worker = String(w.index);
      const last = lastWorkerEvent.get(`${model.model}/${w.index}`) || "";
      const cells = [
        String(w.index), String(w.pid ?? "–"), w.state, `${w.running} / ${w.slots || "–"}`,
        String(w.restarts), w.last_exit || "–", last,
      ];
      cells.forEach((text, i) => {
        const cell = el("td", i === 2 ? `state-${w.state}` : i === 6 && last ? `state-${last}` : "", text);
        if (i === 2) cell.dataset.testid = "worker-state";
        if (i === 5) cell.dataset.testid = "last-exit";
        if (i === 4) cell.dataset.testid = "restarts";
        row.append(cell);
      });
      return row;
    }),
  );
}

function renderAdapters(card, model) {
  const key = JSON.stringify(model.adapters);
  if (key === card.adapterKey) return;
  card.adapterKey = key;
  card.adapters.replaceChildren();
  if (!model.adapters.length) return;
  card.adapters.append(el("h4", "", "LoRA adapters"));
  const list = el("ul");
  for (const adapter of model.adapters) {
    const item = el("li", "", `${adapter.name} `);
    item.append(el("span", `badge state-${adapter.state}`, adapter.state), ` ${adapter.running} in flight `);
    const path = `/admin/models/${encodeURIComponent(model.model)}/adapters/${encodeURIComponent(adapter.name)}`;
    item.append(actionButton("Remove", "small ghost danger", () => admin("DELETE", path)));
    list.append(item);
  }
  card.adapters.append(list);
}

function setState(card, state) {
  card.state.textContent = state;
  card.state.className = `badge state-${state}`;
  const loaded = !["unloaded", "failed", "stopping", "draining"].includes(state);
  card.load.hidden = loaded || state === "stopping" || state === "draining";
  card.unload.hidden = !loaded;
}

function renderStats(stats) {
  const seen = new Set();
  for (const model of stats.models) {
    seen.add(model.model);
    const card = cards.get(model.model) || makeCard(model.model);
    setState(card, model.state);
    card.reason.textContent = model.reason || "";
    const v = card.values;
    v.tps.textContent = fmt(model.tokens_per_s);
    v.tpsNow.textContent = fmt(model.tokens_per_s_now);
    v.ttft.textContent = fmt(model.ttft_s, 2, " s");
    v.running.textContent = String(model.running);
    v.queue.textContent = String(model.waiting);
    v.rejected.textContent = String(model.rejected);
    v.requests.textContent = String(model.requests);
    v.cache.textContent = model.cache_hit_rate === null ? "–" : `${(model.cache_hit_rate * 100).toFixed(0)} %`;
    card.chart.push(model.tokens_per_s_now, model.waiting);
    renderWorkers(card, model);
    renderAdapters(card, model);
  }
  for (const [name, card] of cards) {
    if (!seen.has(name)) {
      card.root.remove();
      cards.delete(name);
    }
  }
  const names = [...seen].sort().join("\n");
  if (names !== modelNames) {
    modelNames = names;
    onModelsChanged([...seen]);
  }
}

function onEvent(name, data) {
  const event = JSON.parse(data);
  if (name === "stats") {
    renderStats(event);
  } else if (name === "state") {
    const card = cards.get(event.model);
    if (card) setState(card, event.state);
    log(`${event.model}: ${event.previous} → ${event.state}${event.reason ? ` (${event.reason})` : ""}`);
  } else if (name === "worker") {
    lastWorkerEvent.set(`${event.model}/${event.worker}`, event.kind);
    const cell = document.querySelector(`.model-card[data-model="${CSS.escape(event.model)}"] tr[data-worker="${event.worker}"] td:last-child`);
    if (cell) {
      cell.textContent = event.kind;
      cell.className = `state-${event.kind}`;
    }
    log(`${event.model}: worker ${event.worker} ${event.kind}${event.pid ? ` (pid ${event.pid})` : ""}${event.reason ? `: ${event.reason}` : ""}`);
  } else if (name === "snapshot") {
    log(`connected: ${event.models.length} model(s)`);
  }
}

async function follow(mine) {
  while (running && mine === generation) {
    const controller = new AbortController();
    follow.controller = controller;
    try {
      feedState("connecting", "warn");
      await streamEvents("/ui/events", {
        signal: controller.signal,
        onOpen() {
          feedState("live", "ok");
          retryMs = 500;
        },
        onEvent,
      });
      feedState("reconnecting", "warn");
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status === 401) {
        feedState("needs an API key", "bad");
        return;
      }
      feedState("reconnecting", "warn");
    }
    await new Promise((resolve) => setTimeout(resolve, retryMs));
    retryMs = Math.min(retryMs * 2, 10_000);
  }
}

export function startPool() {
  if (running) return;
  running = true;
  generation += 1;
  follow(generation);
}

export function stopPool() {
  running = false;
  follow.controller?.abort();
}

export function initPool(modelsChanged) {
  onModelsChanged = (names) => {
    const select = $("add-adapter").elements.model;
    const current = select.value;
    select.replaceChildren(...names.map((n) => Object.assign(el("option", "", n), { value: n })));
    if (names.includes(current)) select.value = current;
    modelsChanged(names);
  };
  const notice = el("p", "notice");
  notice.id = "admin-notice";
  notice.setAttribute("role", "alert");
  $("admin").append(notice);
  $("add-model").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target.elements;
    const spec = { name: form.name.value.trim(), path: form.path.value.trim(), workers: Number(form.workers.value) || 1 };
    if (form.backend.value) spec.backend = form.backend.value;
    notice.textContent = "";
    admin("POST", "/admin/models?wait=false", spec);
  });
  $("add-adapter").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target.elements;
    notice.textContent = "";
    const model = encodeURIComponent(form.model.value);
    admin("POST", `/admin/models/${model}/adapters`, { name: form.name.value.trim(), path: form.path.value.trim() });
  });
}

// The page's entry: which view the path names, the API key dialog, and starting both views.
// Nothing here or in the other modules writes model or server text as HTML (see markdown.js).

import { adminKey, apiKey, onKeyChange, onUnauthorized, setKeys } from "./api.js";
import { initPlayground, loadModels } from "./playground.js";
import { initPool, startPool, stopPool } from "./pool.js";

const $ = (id) => document.getElementById(id);
const VIEWS = { "/ui/pool": "pool" };

function show(view) {
  for (const name of ["playground", "pool"]) {
    $(`view-${name}`).hidden = name !== view;
    const link = $(`nav-${name}`);
    if (name === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = view === "pool" ? "Pool · warmserve" : "Playground · warmserve";
  if (view === "pool") startPool();
  else stopPool();
}

const viewOf = (path) => VIEWS[path.replace(/\/$/, "")] || "playground";

function status(text) {
  $("connection").textContent = text;
}

function askForKey(reason, admin = false) {
  $("key-reason").textContent = reason;
  $("key-input").value = apiKey();
  $("admin-key-input").value = adminKey();
  if (!$("key-dialog").open) $("key-dialog").showModal();
  (admin ? $("admin-key-input") : $("key-input")).focus();
}

async function refresh() {
  try {
    const models = await loadModels();
    status(`${models.length} model${models.length === 1 ? "" : "s"}${apiKey() ? " · key set" : ""}`);
  } catch (error) {
    status(error.status === 401 ? "needs an API key" : `cannot list models: ${error.message}`);
  }
}

function init() {
  for (const link of document.querySelectorAll("nav a")) {
    link.addEventListener("click", (event) => {
      if (event.metaKey || event.ctrlKey || event.shiftKey) return;
      event.preventDefault();
      history.pushState(null, "", link.getAttribute("href"));
      show(viewOf(location.pathname));
    });
  }
  addEventListener("popstate", () => show(viewOf(location.pathname)));

  onUnauthorized((error, admin) => {
    askForKey(
      admin
        ? `${error.message} Admin actions need an admin key.`
        : "This server wants an API key. It is kept in this tab only (sessionStorage) and sent as a bearer token.",
      admin,
    );
  });
  onKeyChange(() => {
    refresh();
    if (viewOf(location.pathname) === "pool") {
      stopPool();
      startPool();
    }
  });
  $("key-button").addEventListener("click", () => askForKey("Keys are kept in this tab only (sessionStorage) and sent as bearer tokens."));
  $("key-form").addEventListener("submit", () => setKeys($("key-input").value.trim(), $("admin-key-input").value.trim()));
  $("key-forget").addEventListener("click", () => {
    $("key-dialog").close();
    setKeys("", "");
  });
  $("key-cancel").addEventListener("click", () => $("key-dialog").close());

  initPlayground();
  initPool(() => refresh());
  show(viewOf(location.pathname));
  refresh();
}

init();

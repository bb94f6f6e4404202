// The console's entry point: configuration, sign-in, the page's one LiveHub, and hash routes
// (#/ live cards and demo controls, #/jobs, #/jobs/{id}, #/schedules, #/push).

import { Api, ApiError, loadConfig, localHelpers } from "./api.js";
import { LiveView } from "./cards.js";
import { DetailsView } from "./details.js";
import { h, problemText, replace } from "./dom.js";
import { JobsView } from "./jobs.js";
import { LiveHub } from "./live.js";
import { PushView } from "./push.js";
import { SchedulesView } from "./schedules.js";

const TOKEN_KEY = "tether.token";
const main = document.getElementById("main");
const connection = document.getElementById("connection");
const LABELS = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", offline: "offline" };

async function boot() {
  const config = await loadConfig();
  config.helpers = localHelpers;
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) return signIn(config);
  const api = new Api(config.httpUrl, token);
  try {
    await api.listJobs({ limit: 1 });
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      localStorage.removeItem(TOKEN_KEY);
      return signIn(config, "That token was refused (expired or for another stack).");
    }
  }
  start(config, api, token);
}

function signIn(config, problem = "") {
  const field = h("textarea", { id: "token", required: true, autocomplete: "off", spellcheck: "false" });
  const message = h("p", { role: "alert", class: "error" }, problem);
  const accept = async (token) => {
    try {
      await new Api(config.httpUrl, token).listJobs({ limit: 1 });
      localStorage.setItem(TOKEN_KEY, token);
      location.hash = "#/";
      location.reload();
    } catch (error) {
      message.textContent = `Sign-in failed: ${problemText(error)}`;
    }
  };
  replace(
    main,
    h("h1", {}, "Sign in"),
    h("form", { class: "panel", onsubmit: (event) => { event.preventDefault(); accept(field.value.trim()); } },
      h("label", { for: "token" }, "Bearer token (a JWT: `tether token` mints one locally)"),
      field,
      h("div", { class: "actions" },
        h("button", { type: "submit" }, "Sign in"),
        config.local ? h("button", { type: "button", id: "use-dev-token", class: "quiet", onclick: async () => {
          try { await accept(await config.helpers.devToken()); } catch (error) { message.textContent = problemText(error); }
        } }, "Use local dev token") : null)),
    message,
  );
}

function start(config, api, token) {
  const hub = new LiveHub(api, config.wsUrl, token);
  hub.addEventListener("connection", (event) => {
    const { state, retryInMs } = event.detail;
    connection.dataset.state = state;
    connection.textContent = state === "reconnecting" && retryInMs
      ? `reconnecting… (polling every 2.5 s)` : LABELS[state];
  });
  hub.start();
  const views = {
    live: new LiveView(api, hub, config),
    jobs: new JobsView(api),
    details: new DetailsView(api, hub),
    schedules: new SchedulesView(api),
    push: new PushView(api, config.helpers),
  };
  document.getElementById("nav").hidden = false;
  document.getElementById("nav-push").hidden = !config.local;
  const signOut = document.getElementById("sign-out");
  signOut.hidden = false;
  signOut.addEventListener("click", () => {
    hub.stop();
    localStorage.removeItem(TOKEN_KEY);
    location.hash = "#/";
    location.reload();
  });
  const route = () => {
    const path = location.hash.replace(/^#/, "") || "/";
    for (const link of document.querySelectorAll("nav a")) {
      const target = link.getAttribute("href").slice(1);
      const current = target === "/" ? path === "/" : path.startsWith(target);
      if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
    }
    const details = path.match(/^\/jobs\/(.+)$/);
    if (details) views.details.mount(main, decodeURIComponent(details[1]));
    else if (path === "/jobs") views.jobs.mount(main);
    else if (path === "/schedules") views.schedules.mount(main);
    else if (path === "/push" && config.local) views.push.mount(main);
    else views.live.mount(main);
  };
  addEventListener("hashchange", () => { route(); main.focus(); });
  route();
  window.tetherConsole = { hub, views };  // for the curious (and the browser tests)
}

boot();

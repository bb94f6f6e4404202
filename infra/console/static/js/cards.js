// The live view: a status card per job being watched and the demo controls.
// Cards update in place (focus stays where it is); a visually hidden live region per card
// announces status changes and every tenth of the way, not every frame.

import { badge, duration, h, problemText, replace, shortId } from "./dom.js";
import { TERMINAL } from "./tracker.js";

const DISMISSED_KEY = "tether.dismissed";
const ACTIVE = ["running", "paused", "queued", "scheduled"];

export class StatusCard {
  constructor(jobId, actions) {
    this.jobId = jobId;
    this.actions = actions;
    this.view = null;
    this.announcedTenth = -1;
    this.announcedStatus = null;
    const id = `card-${jobId.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    this.title = h("h3", { id: `${id}-title` }, shortId(jobId));
    this.badge = h("span");
    this.bar = h("progress", { max: 100, value: 0, "aria-labelledby": `${id}-title` });
    this.percent = h("span", { class: "percent", dataset: { field: "percent" } }, "0 %");
    this.source = h("span", { class: "source muted" });
    this.fields = {};
    const counters = ["total", "processed", "succeeded", "failed", "skipped"].map((name) =>
      h("div", {}, h("dt", {}, name), (this.fields[name] = h("dd", { dataset: { field: name } }, "0"))),
    );
    this.timing = h("p", { class: "line muted" });
    this.note = h("p", { class: "error", hidden: true });
    this.live = h("p", { class: "sr-only", "aria-live": "polite", "aria-atomic": "true" });
    this.pause = h("button", { type: "button", class: "quiet", onclick: () => this.onPause() }, "Pause");
    this.cancel = h("button", { type: "button", class: "danger", onclick: () => actions.cancel(jobId) }, "Cancel");
    this.el = h(
      "li",
      { class: "card", "aria-labelledby": `${id}-title`, dataset: { jobId } },
      h("header", {}, this.title, this.badge),
      this.bar,
      h("p", { class: "line" }, this.percent, this.source),
      h("dl", { class: "counters" }, counters),
      this.timing,
      this.note,
      this.live,
      h(
        "div",
        { class: "actions" },
        this.pause,
        this.cancel,
        h("a", { href: `#/jobs/${encodeURIComponent(jobId)}` }, "Details"),
        h("button", { type: "button", class: "quiet", onclick: () => actions.dismiss(jobId) }, "Dismiss"),
      ),
    );
  }

  onPause() {
    this.actions.control(this.jobId, this.view?.status === "paused" ? "resume" : "pause");
  }

  update(view) {
    this.view = view;
    const label = view.type ? `${view.type}${view.params?.items ? ` · ${view.params.items} items` : ""}` : "job";
    this.title.textContent = `${label} ${shortId(view.jobId)}`;
    replace(this.badge, badge(view.cancelRequested && !TERMINAL.has(view.status) ? "cancelling" : view.status));
    this.el.dataset.status = view.status ?? "";
    this.el.dataset.source = view.source;
    this.bar.value = view.percent;
    this.percent.textContent = `${view.percent} %`;
    this.source.textContent = view.source === "poll" ? "polled" : "";
    for (const [name, el] of Object.entries(this.fields)) el.textContent = String(view.counters[name]);
    const terminal = TERMINAL.has(view.status);
    this.cancel.disabled = terminal || view.cancelRequested;
    this.pause.disabled = !["running", "paused"].includes(view.status);
    this.pause.textContent = view.status === "paused" ? "Resume" : "Pause";
    this.note.hidden = !view.error;
    this.note.textContent = view.error ? `${view.error.code}: ${view.error.message}` : "";
    this.announce(view);
    this.tick(Date.now());
  }

  announce(view) {
    const tenth = Math.floor(view.percent / 10);
    if (view.status !== this.announcedStatus) {
      this.live.textContent = `${view.type ?? "job"} ${view.status}, ${view.percent} percent`;
    } else if (tenth !== this.announcedTenth) {
      this.live.textContent = `${view.percent} percent`;
    }
    this.announcedStatus = view.status;
    this.announcedTenth = tenth;
  }

  tick(now) {
    const view = this.view;
    if (!view?.startedAt) {
      this.timing.textContent = view?.status === "queued" ? "waiting for a run slot" : "not started";
      return;
    }
    const started = Date.parse(view.startedAt);
    const end = TERMINAL.has(view.status) && view.finishedAt ? Date.parse(view.finishedAt) : now;
    const elapsed = end - started;
    let left = "";
    const { processed, total } = view.counters;
    if (view.status === "running" && processed > 0 && total > processed) {
      left = ` · about ${duration((elapsed / processed) * (total - processed))} left`;
    }
    this.timing.textContent = `elapsed ${duration(elapsed)}${left}`;
  }
}

export class LiveView {
  constructor(api, hub, config) {
    this.api = api;
    this.hub = hub;
    this.config = config;
    this.cards = new Map();
    this.list = h("ul", { class: "cards", "aria-label": "Jobs being watched" });
    this.empty = h("p", { class: "muted" }, "No job is running. Start one with the demo controls.");
    this.message = h("p", { role: "alert", class: "error" });
    this.dismissed = new Set(JSON.parse(localStorage.getItem(DISMISSED_KEY) ?? "[]"));
    this.actions = {
      cancel: (id) => this.control(id, "cancel"),
      control: (id, action) => this.control(id, action),
      dismiss: (id) => this.dismiss(id),
    };
    hub.addEventListener("job", (event) => this.cards.get(event.detail.jobId)?.update(event.detail));
    hub.addEventListener("gone", (event) => this.remove(event.detail.jobId));
    setInterval(() => { for (const card of this.cards.values()) card.tick(Date.now()); }, 1000);
  }

  async mount(main) {
    replace(
      main,
      h("h1", {}, "Live jobs"),
      this.message,
      h("section", { "aria-labelledby": "cards-title" }, h("h2", { id: "cards-title" }, "Status"), this.empty, this.list),
      this.demoControls(),
    );
    this.refreshEmpty();
    await this.loadActive();
  }

  async loadActive() {
    try {
      const pages = await Promise.all(ACTIVE.map((status) => this.api.listJobs({ status, limit: 50 })));
      for (const job of pages.flatMap((page) => page.jobs)) {
        if (!this.dismissed.has(job.jobId)) this.show(job);
      }
    } catch (error) {
      this.message.textContent = `Could not load jobs: ${problemText(error)}`;
    }
  }

  show(state) {
    let card = this.cards.get(state.jobId);
    if (!card) {
      card = new StatusCard(state.jobId, this.actions);
      this.cards.set(state.jobId, card);
      this.list.prepend(card.el);
    }
    card.update(this.hub.watch(state));
    this.refreshEmpty();
  }

  remove(jobId) {
    this.cards.get(jobId)?.el.remove();
    this.cards.delete(jobId);
    this.refreshEmpty();
  }

  dismiss(jobId) {
    this.dismissed.add(jobId);
    localStorage.setItem(DISMISSED_KEY, JSON.stringify([...this.dismissed].slice(-500)));
    this.hub.unwatch(jobId);
    this.remove(jobId);
  }

  refreshEmpty() { this.empty.hidden = this.cards.size > 0; }

  async control(jobId, action) {
    this.message.textContent = "";
    try {
      this.hub.learn(await this.api.control(jobId, action));
    } catch (error) {
      this.message.textContent = `${action} failed: ${problemText(error)}`;
    }
  }

  async start(request) {
    this.message.textContent = "";
    try {
      const created = await this.api.createJob(request);
      this.dismissed.delete(created.job.jobId);
      this.show(created.job);
      return created.job;
    } catch (error) {
      this.message.textContent = `Could not start the job: ${problemText(error)}`;
      return null;
    }
  }

  demoControls() {
    const items = h("input", { id: "demo-items", type: "number", min: 1, max: 1000000, value: 200, required: true });
    const delay = h("input", { id: "demo-delay", type: "number", min: 0, max: 60000, value: 20, required: true });
    const priority = h("select", { id: "demo-priority" }, ["normal", "high", "low"].map((p) => h("option", { value: p }, p)));
    const failure = h(
      "select",
      { id: "demo-failure" },
      h("option", { value: "" }, "none"),
      h("option", { value: "transient" }, "transient (retried)"),
      h("option", { value: "permanent" }, "permanent (job fails)"),
    );
    const failAt = h("input", { id: "demo-fail-at", type: "number", min: 0, value: 100 });
    const demo = h(
      "form",
      {
        class: "panel",
        "aria-labelledby": "demo-title",
        onsubmit: (event) => {
          event.preventDefault();
          const params = { items: Number(items.value), delayMs: Number(delay.value) };
          if (failure.value === "transient") params.transientFailures = [Number(failAt.value)];
          if (failure.value === "permanent") params.permanentFailures = [Number(failAt.value)];
          const retry = { initialBackoffMs: 500, maxRetries: 3 };
          this.start({ type: "demo", params, priority: priority.value, retry });
        },
      },
      h("h2", { id: "demo-title" }, "Demo controls"),
      h(
        "div",
        { class: "fields" },
        h("div", {}, h("label", { for: "demo-items" }, "Items"), items),
        h("div", {}, h("label", { for: "demo-delay" }, "Delay per item (ms)"), delay),
        h("div", {}, h("label", { for: "demo-priority" }, "Priority"), priority),
        h("div", {}, h("label", { for: "demo-failure" }, "Inject a failure"), failure),
        h("div", {}, h("label", { for: "demo-fail-at" }, "… at item"), failAt),
      ),
      h("div", { class: "actions" }, h("button", { type: "submit", id: "start-demo" }, "Start demo job")),
    );
    if (!this.config.local) return demo;
    const rows = h("input", { id: "csv-rows", type: "number", min: 1, max: 100000, value: 500 });
    const csv = h(
      "form",
      {
        class: "panel",
        "aria-labelledby": "csv-title",
        onsubmit: async (event) => {
          event.preventDefault();
          try {
            const sample = await this.config.helpers.sampleCsv(rows.value);
            await this.start({ type: "csv_import", params: { bucket: sample.bucket, key: sample.key } });
          } catch (error) {
            this.message.textContent = `Could not make the sample CSV: ${problemText(error)}`;
          }
        },
      },
      h("h2", { id: "csv-title" }, "CSV import from a sample file"),
      h("p", { class: "muted" }, "Puts a contacts CSV in the local S3 (every 10th email and 25th age invalid) and imports it."),
      h("div", { class: "fields" }, h("div", {}, h("label", { for: "csv-rows" }, "Rows"), rows)),
      h("div", { class: "actions" }, h("button", { type: "submit", id: "start-csv" }, "Start CSV import")),
    );
    return [demo, csv];
  }
}

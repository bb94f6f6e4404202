// One job in full: its state (live through the page's socket), attempts and errors, result,
// pushes, and the message history read from the log (GET /jobs/{id}/messages).

import { badge, h, problemText, replace, when } from "./dom.js";
import { TERMINAL } from "./tracker.js";

export class DetailsView {
  constructor(api, hub) {
    this.api = api;
    this.hub = hub;
    hub.addEventListener("job", (event) => {
      if (event.detail.jobId === this.jobId && this.stateEl?.isConnected) this.render(event.detail);
    });
  }

  async mount(main, jobId) {
    this.jobId = jobId;
    this.stateEl = h("div");
    this.message = h("p", { role: "alert", class: "error" });
    this.history = h("tbody");
    this.more = h("button", { type: "button", class: "quiet", hidden: true, onclick: () => this.loadMessages() }, "Older messages… load more");
    this.after = 0;
    replace(
      main,
      h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")),
      h("h1", {}, "Job ", h("code", {}, jobId)),
      this.message,
      this.stateEl,
      h(
        "section",
        { "aria-labelledby": "history-title" },
        h("h2", { id: "history-title" }, "Message history"),
        h("div", { class: "table-wrap" }, h("table", { id: "history" },
          h("thead", {}, h("tr", {}, ["seq", "type", "at", "data"].map((c) => h("th", { scope: "col" }, c)))),
          this.history)),
        this.more,
      ),
    );
    try {
      this.render(this.hub.watch(await this.api.job(jobId)));
    } catch (error) {
      this.message.textContent = `Could not load the job: ${problemText(error)}`;
      return;
    }
    await this.loadMessages();
  }

  async loadMessages() {
    try {
      const page = await this.api.messages(this.jobId, this.after);
      for (const message of page.messages) {
        this.history.append(h("tr", {},
          h("td", { class: "num" }, message.seq), h("td", {}, message.type), h("td", {}, when(message.ts)),
          h("td", {}, h("code", {}, JSON.stringify(message.data)))));
        this.after = message.seq;
      }
      this.more.hidden = !page.hasMore;
      this.more.textContent = "Load more messages";
    } catch (error) {
      const expired = error.status === 410 ? "The log has expired (messages live 24 h); the state above is current." : problemText(error);
      this.message.textContent = expired;
    }
  }

  render(job) {
    const actions = h("div", { class: "actions" });
    const act = (label, action, cls = "quiet") => h("button", { type: "button", class: cls, onclick: () => this.control(action) }, label);
    if (job.status === "running") actions.append(act("Pause", "pause"));
    if (job.status === "paused") actions.append(act("Resume", "resume"));
    if (!TERMINAL.has(job.status)) actions.append(act("Cancel", "cancel", "danger"));
    if (TERMINAL.has(job.status)) actions.append(act("Delete", "delete", "danger"));
    const row = (name, value) => [h("dt", {}, name), h("dd", {}, value ?? "–")];
    const c = job.counters ?? {};
    replace(
      this.stateEl,
      h("section", { class: "panel", "aria-labelledby": "state-title" },
        h("h2", { id: "state-title" }, "State ", badge(job.status)),
        h("progress", { max: 100, value: job.percent ?? 0, "aria-label": "Progress" }),
        h("dl", { class: "state" },
          row("type", job.type), row("priority", job.priority), row("progress", `${job.percent} %`),
          row("counters", `total ${c.total} · processed ${c.processed} · succeeded ${c.succeeded} · failed ${c.failed} · skipped ${c.skipped}`),
          row("seq / epoch", `${job.seq} / ${job.epoch}`),
          row("cancel / pause requested", `${Boolean(job.cancelRequested)} / ${Boolean(job.pauseRequested)}`),
          row("created", when(job.createdAt)), row("started", when(job.startedAt)), row("finished", when(job.finishedAt)),
          row("retry", job.retry ? JSON.stringify(job.retry) : null), row("timeout", job.timeoutSeconds ? `${job.timeoutSeconds} s` : null),
          row("params", h("code", {}, JSON.stringify(job.params ?? {}))),
          row("error", job.error ? `${job.error.code}: ${job.error.message}` : null)),
        actions),
      this.attempts(job.attempts ?? []),
      job.result ? h("section", { class: "panel", "aria-labelledby": "result-title" },
        h("h2", { id: "result-title" }, "Result"), h("pre", {}, JSON.stringify(job.result, null, 2))) : null,
      (job.pushAttempts ?? []).length ? h("section", { class: "panel" }, h("h2", {}, "Pushes"),
        h("pre", {}, JSON.stringify(job.pushAttempts, null, 2))) : null,
    );
  }

  attempts(attempts) {
    if (!attempts.length) return h("p", { class: "muted" }, "No failed attempt.");
    return h("section", { "aria-labelledby": "attempts-title" },
      h("h2", { id: "attempts-title" }, "Attempts and errors"),
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["attempt", "at item", "error", "wait", "at"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, attempts.map((a) => h("tr", {},
          h("td", { class: "num" }, a.attempt), h("td", { class: "num" }, a.cursor),
          h("td", {}, `${a.error.code}: ${a.error.message}`), h("td", {}, a.waitMs == null ? "–" : `${a.waitMs} ms`),
          h("td", {}, when(a.at))))))));
  }

  async control(action) {
    this.message.textContent = "";
    try {
      if (action === "delete") {
        if (!confirm("Delete this job and its messages?")) return;
        await this.api.deleteJob(this.jobId);
        this.hub.unwatch(this.jobId);
        location.hash = "#/jobs";
        return;
      }
      this.hub.learn(await this.api.control(this.jobId, action));
    } catch (error) {
      this.message.textContent = `${action} failed: ${problemText(error)}`;
    }
  }
}

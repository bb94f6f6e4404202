// Recurring schedules: list with next and last run, pause/resume, run now, delete,
// and a small form to make one for the demo.

import { badge, h, problemText, replace, when } from "./dom.js";

export class SchedulesView {
  constructor(api) { this.api = api; }

  async mount(main) {
    this.body = h("tbody");
    this.message = h("p", { role: "status", "aria-live": "polite" });
    const name = h("input", { id: "schedule-name", value: "demo every 5 minutes", required: true });
    const expression = h("input", { id: "schedule-expression", value: "rate(5 minutes)", required: true });
    const items = h("input", { id: "schedule-items", type: "number", min: 1, value: 50 });
    replace(
      main,
      h("h1", {}, "Schedules"),
      h("div", { class: "table-wrap" }, h("table", { id: "schedule-table" },
        h("thead", {}, h("tr", {}, ["Name", "Expression", "State", "Next run", "Last run", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
        this.body)),
      this.message,
      h("form", { class: "panel", "aria-labelledby": "new-schedule", onsubmit: async (event) => {
        event.preventDefault();
        try {
          await this.api.createSchedule({
            name: name.value, expression: expression.value, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
            job: { type: "demo", params: { items: Number(items.value), delayMs: 20 } },
          });
          this.message.textContent = "Schedule created.";
          await this.load();
        } catch (error) {
          this.message.textContent = `Could not create it: ${problemText(error)}`;
        }
      } },
        h("h2", { id: "new-schedule" }, "New schedule (a demo job)"),
        h("div", { class: "fields" },
          h("div", {}, h("label", { for: "schedule-name" }, "Name"), name),
          h("div", {}, h("label", { for: "schedule-expression" }, "rate(...) or cron(...)"), expression),
          h("div", {}, h("label", { for: "schedule-items" }, "Items per run"), items)),
        h("div", { class: "actions" }, h("button", { type: "submit" }, "Create schedule"))),
    );
    await this.load();
  }

  async load() {
    try {
      const schedules = [];
      let cursor;
      do {
        const page = await this.api.listSchedules({ limit: 100, cursor });
        schedules.push(...page.schedules);
        cursor = page.nextCursor;
      } while (cursor && schedules.length < 500);
      replace(this.body, schedules.length ? schedules.map((s) => this.row(s))
        : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No schedule yet.")));
    } catch (error) {
      this.message.textContent = `Could not load schedules: ${problemText(error)}`;
    }
  }

  row(schedule) {
    const act = (label, run, cls = "quiet") => h("button", { type: "button", class: cls, onclick: run }, label);
    const id = schedule.scheduleId;
    const toggle = schedule.state === "enabled"
      ? act("Pause", () => this.action(id, "pause", "paused"))
      : act("Resume", () => this.action(id, "resume", "resumed"));
    return h("tr", { dataset: { scheduleId: id } },
      h("td", {}, schedule.name), h("td", {}, h("code", {}, schedule.expression), " ", h("span", { class: "muted" }, schedule.timezone)),
      h("td", {}, badge(schedule.state)), h("td", {}, when(schedule.nextRunAt)), h("td", {}, when(schedule.lastRunAt)),
      h("td", {}, h("div", { class: "actions" }, toggle,
        act("Run now", () => this.runNow(id)),
        act("Delete", () => this.remove(schedule), "danger"))));
  }

  async action(id, action, done) {
    try {
      await this.api.scheduleAction(id, action);
      this.message.textContent = `Schedule ${done}.`;
      await this.load();
    } catch (error) {
      this.message.textContent = `${action} failed: ${problemText(error)}`;
    }
  }

  async runNow(id) {
    try {
      const started = await this.api.scheduleAction(id, "run");
      this.message.replaceChildren("Started job ",
        h("a", { href: `#/jobs/${encodeURIComponent(started.job.jobId)}` }, started.job.jobId),
        started.admitted ? "." : " (queued for a run slot).");
      await this.load();
    } catch (error) {
      this.message.textContent = `Run now failed: ${problemText(error)}`;
    }
  }

  async remove(schedule) {
    if (!confirm(`Delete schedule “${schedule.name}”?`)) return;
    try {
      await this.api.deleteSchedule(schedule.scheduleId);
      this.message.textContent = "Schedule deleted.";
      await this.load();
    } catch (error) {
      this.message.textContent = `Delete failed: ${problemText(error)}`;
    }
  }
}

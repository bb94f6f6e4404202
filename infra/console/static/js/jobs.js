// The job list: the tenant's jobs, filtered by status and type on the server (GET /jobs),
// paginated with its opaque cursor, sorted by time or priority within the page shown.

import { badge, h, problemText, replace, when } from "./dom.js";
import { percentOf } from "./tracker.js";

const STATUSES = ["", "scheduled", "queued", "running", "paused", "completed", "failed", "cancelled"];
const RANK = { high: 0, normal: 1, low: 2 };
const SORTS = {
  newest: (a, b) => b.createdAt.localeCompare(a.createdAt),
  oldest: (a, b) => a.createdAt.localeCompare(b.createdAt),
  priority: (a, b) => RANK[a.priority] - RANK[b.priority] || b.createdAt.localeCompare(a.createdAt),
};
const PAGE_SIZE = 20;

export class JobsView {
  constructor(api) {
    this.api = api;
    this.filter = { status: "", type: "", sort: "newest" };
    this.cursors = [null];  // the cursor of each page seen so far
  }

  async mount(main) {
    const status = h("select", { id: "filter-status" }, STATUSES.map((s) => h("option", { value: s }, s || "any")));
    const type = h("select", { id: "filter-type" }, ["", "demo", "csv_import"].map((t) => h("option", { value: t }, t || "any")));
    const sort = h("select", { id: "sort" }, h("option", { value: "newest" }, "newest first"), h("option", { value: "oldest" }, "oldest first"), h("option", { value: "priority" }, "priority"));
    status.value = this.filter.status;
    type.value = this.filter.type;
    sort.value = this.filter.sort;
    const apply = () => {
      this.filter = { status: status.value, type: type.value, sort: sort.value };
      this.cursors = [null];
      this.load(0);
    };
    for (const control of [status, type, sort]) control.addEventListener("change", apply);
    this.body = h("tbody");
    this.caption = h("p", { class: "muted", "aria-live": "polite" });
    this.prev = h("button", { type: "button", class: "quiet", onclick: () => this.load(this.page - 1) }, "Previous page");
    this.next = h("button", { type: "button", class: "quiet", onclick: () => this.load(this.page + 1) }, "Next page");
    replace(
      main,
      h("h1", {}, "Jobs"),
      h(
        "form",
        { class: "panel fields", role: "search", "aria-label": "Filter jobs", onsubmit: (e) => e.preventDefault() },
        h("div", {}, h("label", { for: "filter-status" }, "Status"), status),
        h("div", {}, h("label", { for: "filter-type" }, "Type"), type),
        h("div", {}, h("label", { for: "sort" }, "Sort"), sort),
      ),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "job-table" },
          h("thead", {}, h("tr", {}, ["Job", "Type", "Status", "Priority", "Progress", "Created"].map((c) => h("th", { scope: "col" }, c)))),
          this.body,
        ),
      ),
      this.caption,
      h("div", { class: "actions" }, this.prev, this.next),
    );
    await this.load(0);
  }

  async load(page) {
    this.page = page;
    this.caption.textContent = "Loading…";
    try {
      const answer = await this.api.listJobs({
        status: this.filter.status, type: this.filter.type, limit: PAGE_SIZE, cursor: this.cursors[page],
      });
      this.cursors[page + 1] = answer.nextCursor ?? undefined;
      const jobs = [...answer.jobs].sort(SORTS[this.filter.sort]);
      replace(this.body, jobs.map((job) => this.row(job)));
      this.caption.textContent = `Page ${page + 1}: ${jobs.length} job${jobs.length === 1 ? "" : "s"}` +
        (this.filter.sort === "priority" ? " (sorted within the page)" : "");
      this.prev.disabled = page === 0;
      this.next.disabled = !answer.nextCursor;
    } catch (error) {
      this.caption.textContent = `Could not load jobs: ${problemText(error)}`;
    }
  }

  row(job) {
    return h(
      "tr",
      { dataset: { jobId: job.jobId } },
      h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(job.jobId)}` }, job.jobId)),
      h("td", {}, job.type),
      h("td", {}, badge(job.status)),
      h("td", {}, job.priority),
      h("td", { class: "num" }, `${percentOf(job.counters)} % (${job.counters.processed}/${job.counters.total})`),
      h("td", {}, when(job.createdAt)),
    );
  }
}

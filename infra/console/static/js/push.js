// The local push sink: what would have reached APNs and FCM (only `tether dev` has it).

import { h, problemText, replace } from "./dom.js";

export class PushView {
  constructor(api, helpers) { this.api = api; this.helpers = helpers; }

  async mount(main) {
    this.body = h("tbody");
    this.message = h("p", { role: "status", "aria-live": "polite" });
    replace(
      main,
      h("h1", {}, "Push sink"),
      h("p", { class: "muted" }, "Pushes are sent when a job ends and no client of its owner saw the end live. Register a test device, start a job, close this tab before it ends."),
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => this.load() }, "Refresh"),
        h("button", { type: "button", class: "quiet", onclick: () => this.register() }, "Register a test Android device")),
      this.message,
      h("div", { class: "table-wrap" }, h("table", { id: "push-table" },
        h("thead", {}, h("tr", {}, ["Platform", "Job", "Title", "Body", "Bytes", "Payload"].map((c) => h("th", { scope: "col" }, c)))),
        this.body)),
    );
    await this.load();
  }

  async load() {
    try {
      const deliveries = await this.helpers.pushSink();
      replace(this.body, deliveries.length ? deliveries.map((d) => h("tr", {},
        h("td", {}, d.platform), h("td", {}, d.jobId ? h("a", { href: `#/jobs/${encodeURIComponent(d.jobId)}` }, d.jobId) : "–"),
        h("td", {}, d.title ?? "–"), h("td", {}, d.body ?? "–"), h("td", { class: "num" }, d.bytes),
        h("td", {}, h("details", {}, h("summary", {}, "show"), h("pre", {}, JSON.stringify(d.payload, null, 2))))))
        : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "Nothing pushed yet.")));
    } catch (error) {
      this.message.textContent = `Could not read the push sink: ${problemText(error)}`;
    }
  }

  async register() {
    try {
      const token = Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");
      await this.api.registerDevice({ platform: "android", token });
      this.message.textContent = "Test device registered: jobs that end unseen push to it.";
    } catch (error) {
      this.message.textContent = `Could not register: ${problemText(error)}`;
    }
  }
}

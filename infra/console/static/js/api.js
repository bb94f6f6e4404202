// Tether's HTTP API as the console uses it: bearer token, JSON, problem+json errors.
// The local-only helpers (dev token, push sink, sample CSV) live next to the page itself.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function loadConfig() {
  const fallback = {
    httpUrl: location.origin,
    wsUrl: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`,
    local: false,
  };
  try {
    const answer = await fetch("config.json", { cache: "no-store" });
    return answer.ok ? { ...fallback, ...(await answer.json()) } : fallback;
  } catch {
    return fallback;
  }
}

export class Api {
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.token = token;
  }

  async request(method, path, { body, query } = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const answer = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (answer.status === 204) return null;
    const type = answer.headers.get("Content-Type") ?? "";
    const data = type.includes("json") ? await answer.json() : null;
    if (!answer.ok) throw new ApiError(answer.status, data);
    return data;
  }

  listJobs(query) { return this.request("GET", "/jobs", { query }); }
  job(id) { return this.request("GET", `/jobs/${encodeURIComponent(id)}`); }
  messages(id, after, limit = 100) {
    return this.request("GET", `/jobs/${encodeURIComponent(id)}/messages`, { query: { after, limit } });
  }
  createJob(request) { return this.request("POST", "/jobs", { body: request }); }
  control(id, action) { return this.request("POST", `/jobs/${encodeURIComponent(id)}/${action}`); }
  deleteJob(id) { return this.request("DELETE", `/jobs/${encodeURIComponent(id)}`); }

  listSchedules(query) { return this.request("GET", "/schedules", { query }); }
  createSchedule(request) { return this.request("POST", "/schedules", { body: request }); }
  scheduleAction(id, action) {
    return this.request("POST", `/schedules/${encodeURIComponent(id)}/${action}`);
  }
  deleteSchedule(id) { return this.request("DELETE", `/schedules/${encodeURIComponent(id)}`); }
  registerDevice(request) { return this.request("POST", "/devices", { body: request }); }
}

// Local-only helpers served by `tether dev` beside the page (relative to /console/).
async function local(method, path) {
  const answer = await fetch(path, { method, cache: "no-store" });
  const data = await answer.json();
  if (!answer.ok) throw new ApiError(answer.status, data);
  return data;
}

export const localHelpers = {
  devToken: () => local("GET", "dev-token").then((data) => data.token),
  pushSink: () => local("GET", "push-sink").then((data) => data.deliveries),
  sampleCsv: (rows) => local("POST", `sample-csv?rows=${encodeURIComponent(rows)}`),
};

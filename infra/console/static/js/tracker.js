// One job's place in its log, kept by the rules every Tether client keeps (docs/protocol.md; the
// Python client's infra/client/tracker.py is the reference): a seq already seen is dropped; a
// seq ahead of the next is held until the replay fills the hole, and when the replay is over
// and the hole is still there the owner resubscribes from `lastSeq`; a state read older than
// what was shown changes nothing (but the resync of a server that lost history is followed
// back); counters never go backwards. Pure: no sockets, no timers.

export const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const COUNTERS = ["total", "processed", "succeeded", "failed", "skipped"];

export function emptyCounters() {
  return Object.fromEntries(COUNTERS.map((name) => [name, 0]));
}

// What to show next: every count at least what was shown; `total` from the newer read.
export function mergeCounters(shown, incoming) {
  const newer = (incoming.processed ?? 0) >= shown.processed;
  const merged = { total: newer ? incoming.total ?? shown.total : shown.total };
  for (const name of COUNTERS.slice(1)) merged[name] = Math.max(shown[name], incoming[name] ?? 0);
  return merged;
}

export function percentOf(counters) {
  if (!counters.total) return 0;
  return Math.min(100, Math.round((counters.processed * 1000) / counters.total) / 10);
}

export class JobTracker {
  constructor(jobId) {
    this.jobId = jobId;
    this.lastSeq = 0;
    this.epoch = null;
    this.job = { jobId };            // the last full state, with messages applied on top
    this.counters = emptyCounters();
    this.duplicates = 0;
    this.held = new Map();
    this.awaitingReply = false;
    this.replayHead = 0;
    this.otherEpoch = false;
    this.logRewound = false;
    this.source = "state";           // what moved it last: "live", "poll" or "state"
  }

  get status() { return this.job.status ?? null; }
  get finished() { return TERMINAL.has(this.status); }

  subscribeAction() {
    this.awaitingReply = true;
    this.otherEpoch = false;
    const action = { action: "subscribe", jobId: this.jobId, since: this.lastSeq };
    if (this.epoch) action.epoch = this.epoch;
    return action;
  }

  subscribed(reply) {
    // Not recovered: a `resync` follows, and until it is adopted nothing held is a gap.
    this.awaitingReply = !reply.recovered;
    // Not recovered and behind what we saw in this very epoch: the server lost history, so
    // the resync that follows is the truth although it goes back.
    this.logRewound = !reply.recovered && reply.epoch === this.epoch && reply.seq < this.lastSeq;
    if (reply.recovered) {
      this.epoch = reply.epoch;
      this.replayHead = Math.max(this.replayHead, reply.seq);
    }
  }

  refused() { this.awaitingReply = false; }

  // One persisted message; true when something new became visible.
  accept(message) {
    const seq = message.seq;
    if (seq == null || (message.type !== "status" && message.type !== "progress")) return false;
    if (this.epoch && message.epoch && message.epoch !== this.epoch) {
      this.otherEpoch = true; // another generation: only a resubscribe can sort it out
      return false;
    }
    if (seq <= this.lastSeq || this.held.has(seq)) {
      this.duplicates += 1;
      return false;
    }
    this.held.set(seq, message);
    return this.flush();
  }

  get needsResubscribe() {
    if (this.awaitingReply) return false;
    return this.otherEpoch || (this.held.size > 0 && this.lastSeq >= this.replayHead);
  }

  // A full state (GET /jobs/{id}, a resync, a control's answer); an older read changes nothing,
  // unless the server said its log went back (`subscribed`).
  adopt(state, source = "state") {
    if (state.epoch === this.epoch && state.seq < this.lastSeq) {
      if (!this.logRewound) return false;
      this.held.clear(); // what we held was from the history the server lost
    }
    this.logRewound = false;
    for (const [seq, message] of this.held) {
      if (message.epoch && message.epoch !== state.epoch) this.held.delete(seq);
    }
    const counters = mergeCounters(this.counters, state.counters ?? {});
    this.job = { ...this.job, ...state, counters };
    this.counters = counters;
    this.epoch = state.epoch;
    this.lastSeq = state.seq;
    this.replayHead = state.seq;
    this.awaitingReply = false;
    this.otherEpoch = false;
    for (const seq of [...this.held.keys()]) if (seq <= state.seq) this.held.delete(seq);
    this.source = source;
    this.flush();
    return true;
  }

  flush() {
    let moved = false;
    for (let next = this.held.get(this.lastSeq + 1); next; next = this.held.get(this.lastSeq + 1)) {
      this.held.delete(this.lastSeq + 1);
      this.apply(next);
      this.lastSeq += 1;
      moved = true;
    }
    if (moved) this.source = "live";
    return moved;
  }

  apply(message) {
    const data = message.data ?? {};
    if (message.type === "progress") {
      this.counters = mergeCounters(this.counters, data);
      this.job = { ...this.job, counters: this.counters };
      return;
    }
    const job = { ...this.job, status: data.status, error: data.error ?? this.job.error };
    job.cancelRequested = data.cancelRequested ?? job.cancelRequested;
    job.pauseRequested = data.pauseRequested ?? job.pauseRequested;
    if (data.result !== undefined) job.result = data.result;
    if (data.status === "running" && !job.startedAt) job.startedAt = message.ts;
    if (TERMINAL.has(data.status) && !job.finishedAt) job.finishedAt = message.ts;
    job.updatedAt = message.ts ?? job.updatedAt;
    this.job = job;
  }

  view() {
    return {
      ...this.job,
      counters: { ...this.counters },
      percent: percentOf(this.counters),
      seq: this.lastSeq,
      epoch: this.epoch,
      source: this.source,
    };
  }
}

// One WebSocket per page, shared by every view, with the recovery contract of every Tether
// client (docs/protocol.md): subscribe with `since` and `epoch`, drop duplicate seqs, resubscribe
// on a gap, honour `resync` with a state sync over HTTP, ack what was shown, `ping` as
// keepalive. When the socket goes it reconnects with backoff (1, 2, 4, 8, 16 s, then every
// 30 s) and, meanwhile, polls GET /jobs/{id} every 2.5 s for each watched job, saying so.
//
// Events: "job" (detail: a job's view, after every visible change), "connection" (detail:
// {state: "connecting" | "live" | "reconnecting" | "offline", retryInMs}).

import { JobTracker } from "./tracker.js";

export const DEFAULTS = {
  pollMs: 2500,
  pingMs: 60_000,          // API Gateway closes sockets idle for 10 minutes
  pongTimeoutMs: 10_000,
  firstWaitMs: 1000,
  maxWaitMs: 30_000,
  idleSyncMs: 30_000,      // a watched job quiet this long: check its state over HTTP
  ackEveryMs: 2000,
  maxSubscribeFailures: 3,
};

export class LiveHub extends EventTarget {
  constructor(api, wsUrl, token, options = {}) {
    super();
    this.api = api;
    this.wsUrl = wsUrl;
    this.token = token;
    this.options = { ...DEFAULTS, ...options };
    this.trackers = new Map();
    this.heardAt = new Map();        // jobId -> when the socket last moved it
    this.acked = new Map();          // jobId -> seq acked
    this.failures = new Map();       // jobId -> refused subscribes in a row
    this.socket = null;
    this.state = "offline";
    this.attempt = 0;
    this.timers = {};
    this.stopped = true;
    this.reconnects = 0;
  }

  // -- public -------------------------------------------------------------------------------

  start() {
    this.stopped = false;
    this.connect();
    this.timers.ack = setInterval(() => this.flushAcks(), this.options.ackEveryMs);
    this.timers.idle = setInterval(() => this.checkQuietJobs(), this.options.idleSyncMs / 2);
    addEventListener("online", this.onOnline = () => this.reconnectNow());
  }

  stop() {
    this.stopped = true;
    for (const timer of Object.values(this.timers)) { clearInterval(timer); clearTimeout(timer); }
    this.timers = {};
    removeEventListener("online", this.onOnline);
    this.socket?.close(1000, "signed out");
    this.socket = null;
    this.setState("offline");
  }

  // Follow a job from a state read (its seq and epoch): subscribe from there.
  watch(state) {
    let tracker = this.trackers.get(state.jobId);
    if (!tracker) {
      tracker = new JobTracker(state.jobId);
      this.trackers.set(state.jobId, tracker);
      tracker.adopt(state);
      this.heardAt.set(state.jobId, Date.now());
      if (this.isLive) this.send(tracker.subscribeAction());
    } else {
      tracker.adopt(state);
    }
    this.emit(tracker);
    return tracker.view();
  }

  // A state learnt elsewhere (a control's answer); never moves counters backwards.
  learn(state) {
    const tracker = this.trackers.get(state.jobId);
    if (tracker && tracker.adopt(state)) this.emit(tracker);
  }

  unwatch(jobId) {
    if (!this.trackers.delete(jobId)) return;
    if (this.isLive) this.send({ action: "unsubscribe", jobId });
  }

  view(jobId) { return this.trackers.get(jobId)?.view(); }
  get isLive() { return this.socket?.readyState === WebSocket.OPEN; }

  // -- the socket ---------------------------------------------------------------------------

  connect() {
    if (this.stopped) return;
    this.setState(this.attempt === 0 && this.reconnects === 0 ? "connecting" : "reconnecting");
    let socket;
    try {
      socket = new WebSocket(this.wsUrl, ["tether.v2", `bearer.${this.token}`]);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => this.onOpen(socket);
    socket.onmessage = (event) => this.onFrame(event.data);
    socket.onclose = () => this.onClose(socket);
    socket.onerror = () => {};  // onclose follows
  }

  onOpen(socket) {
    if (socket !== this.socket) return;
    this.attempt = 0;
    this.stopPolling();
    this.setState("live");
    for (const tracker of this.trackers.values()) {
      this.heardAt.set(tracker.jobId, Date.now());
      if (!tracker.finished) this.send(tracker.subscribeAction());
    }
    clearInterval(this.timers.ping);
    this.timers.ping = setInterval(() => this.ping(), this.options.pingMs);
  }

  onClose(socket) {
    if (socket !== this.socket) return;
    this.socket = null;
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.pong);
    if (this.stopped) return;
    this.reconnects += 1;
    this.startPolling();
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    const { firstWaitMs, maxWaitMs } = this.options;
    const wait = Math.min(maxWaitMs, firstWaitMs * 2 ** this.attempt);
    this.attempt += 1;
    this.setState("reconnecting", wait);
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this.connect(), wait);
  }

  reconnectNow() {
    if (this.stopped || this.isLive) return;
    clearTimeout(this.timers.reconnect);
    this.attempt = 0;
    this.connect();
  }

  ping() {
    if (!this.isLive) return;
    this.send({ action: "ping" });
    if (!this.timers.pong) {
      this.timers.pong = setTimeout(() => this.socket?.close(4000, "no pong"), this.options.pongTimeoutMs);
    }
  }

  send(action) {
    if (this.isLive) this.socket.send(JSON.stringify(action));
  }

  // -- frames -------------------------------------------------------------------------------

  onFrame(text) {
    let frame;
    try { frame = JSON.parse(text); } catch { return; }
    switch (frame.type) {
      case "subscribed": {
        const tracker = this.trackers.get(frame.data?.jobId ?? frame.jobId);
        if (tracker) { tracker.subscribed(frame.data); this.failures.delete(tracker.jobId); }
        break;
      }
      case "batch":
        for (const message of frame.data?.messages ?? []) this.deliver(message);
        break;
      case "status":
      case "progress":
        this.deliver(frame);
        break;
      case "resync":
        this.resync(frame.jobId ?? frame.data?.jobId, frame.data);
        break;
      case "error":
        this.onError(frame);
        break;
      case "pong":
        clearTimeout(this.timers.pong);
        this.timers.pong = null;
        break;
    }
    for (const tracker of this.trackers.values()) {
      if (tracker.needsResubscribe) this.send(tracker.subscribeAction());
    }
  }

  deliver(message) {
    const tracker = this.trackers.get(message.jobId);
    if (!tracker) return;
    this.heardAt.set(tracker.jobId, Date.now());
    if (tracker.accept(message)) {
      this.emit(tracker);
      if (tracker.finished) this.flushAcks();
    }
  }

  // The log cannot fill the gap: take the state over HTTP (the frame's snapshot if that fails).
  async resync(jobId, snapshot) {
    const tracker = this.trackers.get(jobId);
    if (!tracker) return;
    try {
      if (tracker.adopt(await this.api.job(jobId), "state")) this.emit(tracker);
    } catch (error) {
      if (error.status === 404) return this.gone(tracker);
      if (snapshot?.epoch && tracker.adopt(snapshot, "state")) this.emit(tracker);
    }
  }

  async onError(frame) {
    const { code, message } = frame.data ?? {};
    if (code === "not_connected") {
      this.socket?.close(4001, "server forgot this connection");
      return;
    }
    const tracker = this.trackers.get(frame.jobId ?? frame.data?.jobId);
    if (!tracker || !tracker.awaitingReply) {
      this.dispatchEvent(new CustomEvent("problem", { detail: { code, message } }));
      return;
    }
    // The subscribe was refused: learn the state over HTTP, then try again from there.
    tracker.refused();
    const failures = (this.failures.get(tracker.jobId) ?? 0) + 1;
    this.failures.set(tracker.jobId, failures);
    await this.resync(tracker.jobId, null);
    if (failures <= this.options.maxSubscribeFailures && this.trackers.has(tracker.jobId)) {
      this.send(tracker.subscribeAction());
    }
  }

  gone(tracker) {
    this.trackers.delete(tracker.jobId);
    this.dispatchEvent(new CustomEvent("gone", { detail: { jobId: tracker.jobId } }));
  }

  flushAcks() {
    if (!this.isLive) return;
    for (const tracker of this.trackers.values()) {
      if (tracker.awaitingReply || tracker.lastSeq <= (this.acked.get(tracker.jobId) ?? 0)) continue;
      this.send({ action: "ack", jobId: tracker.jobId, seq: tracker.lastSeq });
      this.acked.set(tracker.jobId, tracker.lastSeq);
    }
  }

  // Live but quiet for a while: if the log moved past us, resubscribe (adopting a new epoch).
  async checkQuietJobs() {
    if (!this.isLive) return;
    const now = Date.now();
    for (const tracker of [...this.trackers.values()]) {
      if (tracker.finished || now - (this.heardAt.get(tracker.jobId) ?? now) < this.options.idleSyncMs) continue;
      this.heardAt.set(tracker.jobId, now);
      try {
        const state = await this.api.job(tracker.jobId);
        if (tracker.awaitingReply || state.epoch !== tracker.epoch) {
          if (tracker.adopt(state)) this.emit(tracker);
          this.send(tracker.subscribeAction());
        } else if (state.seq > tracker.lastSeq) {
          this.send(tracker.subscribeAction());
        }
      } catch (error) {
        if (error.status === 404) this.gone(tracker);
      }
    }
  }

  // -- polling while the socket is down -----------------------------------------------------

  startPolling() {
    if (this.timers.poll) return;
    const poll = () => this.pollOnce();
    poll();
    this.timers.poll = setInterval(poll, this.options.pollMs);
  }

  stopPolling() {
    clearInterval(this.timers.poll);
    this.timers.poll = null;
  }

  async pollOnce() {
    for (const tracker of [...this.trackers.values()]) {
      if (tracker.finished) continue;
      try {
        const state = await this.api.job(tracker.jobId);
        if (tracker.adopt(state, "poll")) this.emit(tracker);
      } catch (error) {
        if (error.status === 404) this.gone(tracker);
        // Network down too: keep what is shown and try again next time.
      }
    }
  }

  // -- events -------------------------------------------------------------------------------

  emit(tracker) {
    this.dispatchEvent(new CustomEvent("job", { detail: tracker.view() }));
  }

  setState(state, retryInMs = null) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("connection", { detail: { state, retryInMs } }));
  }
}

// The console's JobTracker (infra/console/static/js/tracker.js) under node's test runner: the
// recovery rules of docs/protocol.md that tests/unit/test_console_tracker.py runs this file for.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const source = readFileSync(new URL("../../infra/console/static/js/tracker.js", import.meta.url), "utf8");
const { JobTracker, mergeCounters } = await import(`data:text/javascript,${encodeURIComponent(source)}`);

const state = (seq, processed, extra = {}) => ({
  jobId: "j1", status: "running", seq, epoch: "e1",
  counters: { total: 100, processed, succeeded: processed, failed: 0, skipped: 0 }, ...extra,
});
const progress = (seq, processed, epoch = "e1") => ({
  type: "progress", jobId: "j1", seq, epoch,
  data: { total: 100, processed, succeeded: processed, failed: 0, skipped: 0, percent: processed },
});

test("a duplicate seq is dropped and counted", () => {
  const tracker = new JobTracker("j1");
  tracker.adopt(state(3, 10));
  assert.equal(tracker.accept(progress(4, 20)), true);
  assert.equal(tracker.accept(progress(4, 20)), false);
  assert.equal(tracker.accept(progress(2, 5)), false);
  assert.equal(tracker.duplicates, 2);
  assert.equal(tracker.view().counters.processed, 20);
});

test("a seq ahead is held until the hole fills; a hole after the replay asks to resubscribe", () => {
  const tracker = new JobTracker("j1");
  tracker.adopt(state(3, 10));
  tracker.subscribeAction();
  tracker.subscribed({ jobId: "j1", seq: 3, epoch: "e1", recovered: true, replayed: 0 });
  assert.equal(tracker.accept(progress(5, 30)), false);
  assert.equal(tracker.needsResubscribe, true);
  assert.deepEqual(tracker.subscribeAction(), { action: "subscribe", jobId: "j1", since: 3, epoch: "e1" });
  assert.equal(tracker.accept(progress(4, 20)), true);
  assert.equal(tracker.lastSeq, 5);
  assert.equal(tracker.view().percent, 30);
});

test("an older state read never moves counters or the position back", () => {
  const tracker = new JobTracker("j1");
  tracker.adopt(state(3, 10));
  tracker.accept(progress(4, 40));
  assert.equal(tracker.adopt(state(3, 10), "poll"), false);
  assert.equal(tracker.view().counters.processed, 40);
  assert.equal(tracker.adopt(state(6, 60), "poll"), true);
  assert.equal(tracker.view().source, "poll");
  assert.equal(tracker.lastSeq, 6);
});

test("a message of another epoch waits for a resubscribe; a resync adopts the new epoch", () => {
  const tracker = new JobTracker("j1");
  tracker.adopt(state(3, 10));
  assert.equal(tracker.accept(progress(4, 20, "e2")), false);
  assert.equal(tracker.needsResubscribe, true);
  tracker.adopt(state(1, 5, { epoch: "e2" }));
  assert.equal(tracker.epoch, "e2");
  assert.equal(tracker.view().counters.processed, 10);  // counters never go backwards
});

test("a resync after a subscribe the server could not recover goes back to its head", () => {
  const tracker = new JobTracker("j1");
  tracker.adopt(state(6, 60));
  tracker.subscribeAction();
  tracker.subscribed({ jobId: "j1", seq: 4, epoch: "e1", recovered: false, replayed: 0 });
  assert.equal(tracker.adopt(state(4, 40), "state"), true);
  assert.equal(tracker.awaitingReply, false);
  assert.equal(tracker.accept(progress(5, 50)), true);
  assert.equal(tracker.lastSeq, 5);
  assert.equal(tracker.view().counters.processed, 60);  // counters never go backwards
  assert.equal(tracker.adopt(state(4, 40), "poll"), false);  // an older read, once more
});

test("a terminal status sets finishedAt and finished", () => {
  const tracker = new JobTracker("j1");
  tracker.adopt(state(3, 100));
  tracker.accept({ type: "status", jobId: "j1", seq: 4, epoch: "e1", ts: "2026-01-01T00:00:00.000Z", data: { status: "completed" } });
  assert.equal(tracker.finished, true);
  assert.equal(tracker.view().finishedAt, "2026-01-01T00:00:00.000Z");
});

test("mergeCounters keeps every count at least what was shown", () => {
  const shown = { total: 100, processed: 50, succeeded: 45, failed: 5, skipped: 0 };
  assert.deepEqual(mergeCounters(shown, { total: 90, processed: 40, succeeded: 40, failed: 0, skipped: 0 }), shown);
});

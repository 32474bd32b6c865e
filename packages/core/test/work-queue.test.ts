// The work queue's rules, with work that finishes (or fails) when the test says so.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createWorkQueue } from "../src/index.ts";

/** Records the runs; each run ends when `finish(key)` (or `fail(key)`) is called. */
function recorder() {
  const started: string[] = [];
  const running = new Set<string>();
  let mostAtOnce = 0;
  const enders = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
  const work = async (key: string) => {
    started.push(key);
    running.add(key);
    mostAtOnce = Math.max(mostAtOnce, running.size);
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    enders.set(key, { resolve, reject });
    try {
      await promise;
    } finally {
      running.delete(key);
    }
  };
  const end = async (key: string, error?: Error) => {
    const ender = enders.get(key);
    assert.ok(ender && running.has(key), `${key} is running`);
    enders.delete(key);
    if (error === undefined) ender.resolve();
    else ender.reject(error);
    // Let the queue start what comes next.
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { started, work, finish: (key: string) => end(key), fail: (key: string) => end(key, new Error(`${key} failed`)), mostAtOnce: () => mostAtOnce };
}

const fastBackoff = { initialMs: 2, maxMs: 4, random: () => 0 };

describe("createWorkQueue", () => {
  it("runs at most `concurrency` keys at once, in the order added", async () => {
    const r = recorder();
    const queue = createWorkQueue({ work: r.work, concurrency: 3, signal: new AbortController().signal });
    for (const key of ["a", "b", "c", "d", "e"]) queue.add(key);
    assert.deepEqual(r.started, ["a", "b", "c"]);
    await r.finish("b");
    assert.deepEqual(r.started, ["a", "b", "c", "d"]);
    for (const key of ["a", "c", "d"]) await r.finish(key);
    assert.deepEqual(r.started, ["a", "b", "c", "d", "e"]);
    await r.finish("e");
    assert.equal(r.mostAtOnce(), 3);
    await queue.idle();
  });

  it("coalesces: a key added while it waits keeps its place and runs once", async () => {
    const r = recorder();
    const queue = createWorkQueue({ work: r.work, signal: new AbortController().signal });
    queue.add("first");
    queue.add("a");
    queue.add("b");
    queue.add("a");
    for (const key of ["first", "a", "b"]) await r.finish(key);
    assert.deepEqual(r.started, ["first", "a", "b"]);
  });

  it("one run per key at a time: a key added while it runs runs once more after, however often it was added", async () => {
    const r = recorder();
    const queue = createWorkQueue({ work: r.work, concurrency: 4, signal: new AbortController().signal });
    queue.add("k");
    queue.add("k");
    queue.add("k");
    queue.add("other");
    assert.deepEqual(r.started, ["k", "other"]);
    await r.finish("k");
    assert.deepEqual(r.started, ["k", "other", "k"]);
    await r.finish("k");
    await r.finish("other");
    await queue.idle();
    assert.deepEqual(r.started, ["k", "other", "k"]);
  });

  it("retries a failing key after its backoff, reports each failure, and resets the backoff on success", async () => {
    const r = recorder();
    const failures: [string, number][] = [];
    const queue = createWorkQueue({
      work: r.work,
      backoff: fastBackoff,
      onError: (key: string, _error, retryInMs) => failures.push([key, retryInMs]),
      signal: new AbortController().signal,
    });
    queue.add("k");
    await r.fail("k");
    // Adding a key that backs off does not cut its backoff short.
    queue.add("k");
    assert.deepEqual(r.started, ["k"]);
    assert.equal(queue.size, 1);
    await queue.idle(); // a key backing off does not count
    while (r.started.length < 2) await new Promise((resolve) => setTimeout(resolve, 1));
    await r.fail("k");
    while (r.started.length < 3) await new Promise((resolve) => setTimeout(resolve, 1));
    await r.finish("k");
    queue.add("k");
    await r.fail("k");
    assert.deepEqual(failures, [
      ["k", 1],
      ["k", 2],
      ["k", 1], // started over after the success
    ]);
  });

  it("idle() resolves at once with nothing to do, else when the last run is over", async () => {
    const r = recorder();
    const queue = createWorkQueue({ work: r.work, concurrency: 2, signal: new AbortController().signal });
    await queue.idle();
    queue.add("a");
    queue.add("b");
    queue.add("a");
    let idle = false;
    const waiting = queue.idle().then(() => {
      idle = true;
    });
    await r.finish("a");
    await r.finish("b");
    assert.equal(idle, false, "a runs again");
    await r.finish("a");
    await waiting;
    assert.equal(idle, true);
  });

  it("stops with the signal: nothing new starts, no retry fires, idle() waits only for the runs in progress", async () => {
    const r = recorder();
    const stop = new AbortController();
    const queue = createWorkQueue({ work: r.work, backoff: fastBackoff, signal: stop.signal });
    queue.add("failing");
    await r.fail("failing");
    queue.add("a");
    queue.add("b");
    stop.abort();
    queue.add("c");
    const waiting = queue.idle();
    await r.finish("a");
    await waiting;
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(r.started, ["failing", "a"]);
    assert.equal(queue.size, 0);
  });

  it("refuses a concurrency below one", () => {
    assert.throws(() => createWorkQueue({ work: async () => {}, concurrency: 0, signal: new AbortController().signal }), RangeError);
  });
});

// The writer's ordering rules, with writes that finish when the test says so.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createWriter, type Write } from "../src/reconciler/writer.ts";

/** Records what runs; each write finishes when `finish(label)` is called. */
function recorder() {
  const started: string[] = [];
  const running = new Set<string>();
  let mostAtOnce = 0;
  const finishers = new Map<string, () => void>();
  const write =
    (label: string): Write =>
    async () => {
      started.push(label);
      running.add(label);
      mostAtOnce = Math.max(mostAtOnce, running.size);
      const { promise, resolve } = Promise.withResolvers<void>();
      finishers.set(label, resolve);
      await promise;
      running.delete(label);
    };
  const finish = async (label: string) => {
    const resolve = finishers.get(label);
    assert.ok(resolve, `${label} is running`);
    resolve();
    // Let the writer start what comes next.
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { started, running, write, finish, mostAtOnce: () => mostAtOnce };
}

describe("createWriter", () => {
  it("runs at most `concurrency` writes at once, in submission order", async () => {
    const r = recorder();
    const writer = createWriter({ concurrency: 3, signal: new AbortController().signal });
    for (const key of ["a", "b", "c", "d", "e"]) writer.submit(key, r.write(key));
    assert.deepEqual(r.started, ["a", "b", "c"]);
    await r.finish("b");
    assert.deepEqual(r.started, ["a", "b", "c", "d"]);
    for (const key of ["a", "c", "d"]) await r.finish(key);
    assert.deepEqual(r.started, ["a", "b", "c", "d", "e"]);
    await r.finish("e");
    assert.equal(r.mostAtOnce(), 3);
    await writer.idle();
  });

  it("never runs two writes of one object at once; a newer write replaces one still waiting", async () => {
    const r = recorder();
    const writer = createWriter({ concurrency: 4, signal: new AbortController().signal });
    writer.submit("svc", r.write("svc#1"));
    writer.submit("svc", r.write("svc#2"));
    writer.submit("svc", r.write("svc#3"));
    // The object waits for its own running write, not for the others.
    writer.submit("other", r.write("other#1"));
    assert.deepEqual(r.started, ["svc#1", "other#1"]);
    await r.finish("svc#1");
    assert.deepEqual(r.started, ["svc#1", "other#1", "svc#3"], "svc#2 was superseded before it started");
    await r.finish("svc#3");
    await r.finish("other#1");
    await writer.idle();
  });

  it("a replaced write keeps its place in the queue", async () => {
    const r = recorder();
    const writer = createWriter({ concurrency: 1, signal: new AbortController().signal });
    writer.submit("first", r.write("first"));
    writer.submit("a", r.write("a#1"));
    writer.submit("b", r.write("b#1"));
    writer.submit("a", r.write("a#2"));
    for (const label of ["first", "a#2", "b#1"]) await r.finish(label);
    assert.deepEqual(r.started, ["first", "a#2", "b#1"]);
  });

  it("idle() resolves at once with nothing to do, else when the last write is done", async () => {
    const r = recorder();
    const writer = createWriter({ concurrency: 2, signal: new AbortController().signal });
    await writer.idle();
    writer.submit("a", r.write("a"));
    writer.submit("b", r.write("b"));
    writer.submit("a", r.write("a#2"));
    let idle = false;
    const waiting = writer.idle().then(() => {
      idle = true;
    });
    await r.finish("a");
    await r.finish("b");
    assert.equal(idle, false, "a#2 is still running");
    await r.finish("a#2");
    await waiting;
    assert.equal(idle, true);
  });

  it("after the signal aborts nothing new starts, and idle() waits only for the running writes", async () => {
    const r = recorder();
    const stop = new AbortController();
    const writer = createWriter({ concurrency: 1, signal: stop.signal });
    writer.submit("a", r.write("a"));
    writer.submit("b", r.write("b"));
    stop.abort();
    writer.submit("c", r.write("c"));
    const waiting = writer.idle();
    await r.finish("a");
    await waiting;
    assert.deepEqual(r.started, ["a"]);
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createBackoff, sleep } from "../src/index.ts";

describe("createBackoff", () => {
  it("doubles from the initial delay up to the cap, jittered within the upper half of each step", () => {
    const steps = [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000];
    for (const random of [() => 0, () => 0.999999]) {
      const backoff = createBackoff({ random });
      for (const step of steps) {
        const delay = backoff.next();
        assert.ok(delay >= step / 2 && delay <= step, `${delay} within [${step / 2}, ${step}]`);
      }
      assert.equal(backoff.attempts, steps.length);
    }
  });

  it("starts over after reset", () => {
    const backoff = createBackoff({ initialMs: 100, maxMs: 1000, random: () => 1 });
    backoff.next();
    backoff.next();
    backoff.reset();
    assert.equal(backoff.attempts, 0);
    assert.equal(backoff.next(), 100);
  });

  it("refuses settings that cannot make progress", () => {
    assert.throws(() => createBackoff({ initialMs: 0 }), RangeError);
    assert.throws(() => createBackoff({ initialMs: 500, maxMs: 100 }), RangeError);
    assert.throws(() => createBackoff({ factor: 0.5 }), RangeError);
  });
});

describe("sleep", () => {
  it("resolves true when the time has passed", async () => {
    assert.equal(await sleep(1), true);
  });
  it("resolves false, without rejecting, when aborted before or during the wait", async () => {
    assert.equal(await sleep(60_000, AbortSignal.abort()), false);
    const controller = new AbortController();
    const waiting = sleep(60_000, controller.signal);
    controller.abort();
    assert.equal(await waiting, false);
  });
});

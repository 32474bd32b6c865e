// What the speaker gives back while idle (src/memory/release.ts), each in a fresh process: malloc's free pages below
// a live allocation (native/malloc_trim.c), and V8's heap after garbage the memory reducer has not collected yet.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";

const release = JSON.stringify(new URL("../src/memory/release.ts", import.meta.url).href);
const run = (script: string, flags: string[] = []) => JSON.parse(execFileSync(process.execPath, [...flags, "--input-type=module", "-e", script]).toString());

describe("trimMalloc", () => {
  it("returns malloc's free pages below a live allocation to the kernel", () => {
    const result = run(
      `
      import { readFileSync } from "node:fs";
      import { trimMalloc } from ${release};
      const anonymousKiB = () => Number(/RssAnon:\\s+(\\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))[1]);
      // 64 MiB below glibc's mmap threshold, so from the arena; the last one, kept, holds the arena's top in place.
      const chunks = Array.from({ length: 1024 }, () => Buffer.alloc(64 * 1024, 1));
      const kept = Buffer.alloc(64 * 1024, 1);
      chunks.length = 0;
      globalThis.gc();
      await new Promise((resolve) => setTimeout(resolve, 200));
      const before = anonymousKiB();
      const released = trimMalloc();
      process.stdout.write(JSON.stringify({ released, before, after: anonymousKiB(), kept: kept.length }));`,
      ["--expose-gc"],
    ) as { released: boolean; before: number; after: number };
    assert.equal(result.released, true, "malloc_trim released memory");
    assert.ok(result.before - result.after >= 32 * 1024, `anonymous RSS ${result.before} → ${result.after} KiB: less than 32 MiB given back`);
  });
});

describe("releaseMemory", () => {
  it("compacts V8's heap to what is live, without exposing gc", () => {
    const result = run(`
      import v8 from "node:v8";
      import { releaseMemory } from ${release};
      // 300,000 objects of which a tenth stay live: the heap holds the rest until a collection.
      let objects = Array.from({ length: 300_000 }, (_, i) => ({ name: "object-" + i, values: [i] }));
      objects = objects.filter((_, i) => i % 10 === 0);
      const before = v8.getHeapStatistics().total_heap_size;
      releaseMemory();
      const after = v8.getHeapStatistics().total_heap_size;
      process.stdout.write(JSON.stringify({ before, after, live: objects.length, gc: typeof globalThis.gc }));`) as { before: number; after: number; gc: string };
    const mib = (n: number) => (n / 1048576).toFixed(1);
    assert.ok(result.after < result.before / 2, `V8 heap ${mib(result.before)} → ${mib(result.after)} MiB: not halved`);
    assert.equal(result.gc, "undefined", "the global gc stays absent");
  });
});

describe("releaseMemoryWhileIdle", () => {
  it("collects after a burst, and not while the heap stays within the growth allowed", () => {
    const result = run(`
      import v8 from "node:v8";
      import { releaseMemoryWhileIdle } from ${release};
      const total = () => v8.getHeapStatistics().total_heap_size;
      const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
      const controller = new AbortController();
      releaseMemoryWhileIdle(controller.signal, { everyMs: 50, growthBytes: 16 * 1024 * 1024 });
      await sleep(300);
      const settled = total();
      // A small burst: under the growth allowed, left to V8.
      let small = Array.from({ length: 20_000 }, (_, i) => ({ name: "small-" + i }));
      small = null;
      await sleep(300);
      const afterSmall = total();
      // A burst: 300,000 objects, live long enough to be promoted, then garbage.
      let burst = Array.from({ length: 300_000 }, (_, i) => ({ name: "object-" + i, values: [i] }));
      const duringBurst = total();
      burst = null;
      await sleep(500);
      const afterBurst = total();
      controller.abort();
      process.stdout.write(JSON.stringify({ settled, afterSmall, duringBurst, afterBurst }));`) as { settled: number; afterSmall: number; duringBurst: number; afterBurst: number };
    const mib = (n: number) => (n / 1048576).toFixed(1);
    assert.ok(result.afterSmall >= result.settled, `heap ${mib(result.settled)} → ${mib(result.afterSmall)} MiB after a small burst: collected`);
    assert.ok(result.duringBurst - result.settled > 16 * 1024 * 1024, `the burst grew the heap by only ${mib(result.duringBurst - result.settled)} MiB`);
    assert.ok(result.afterBurst - result.settled < 4 * 1024 * 1024, `heap ${mib(result.settled)} → ${mib(result.duringBurst)} → ${mib(result.afterBurst)} MiB: the burst was not given back`);
  });
});

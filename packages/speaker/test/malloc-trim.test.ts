// trimMalloc gives back the free pages glibc's malloc keeps below a live allocation (native/malloc_trim.c): in a
// fresh process, 64 MiB of small allocations freed under one that stays are resident until the trim.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";

const script = `
  import { readFileSync } from "node:fs";
  import { trimMalloc } from ${JSON.stringify(new URL("../src/memory/malloc-trim.ts", import.meta.url).href)};
  const anonymousKiB = () => Number(/RssAnon:\\s+(\\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))[1]);
  // Below glibc's mmap threshold, so from the arena; the last one, kept, holds the arena's top in place.
  const chunks = Array.from({ length: 1024 }, () => Buffer.alloc(64 * 1024, 1));
  const kept = Buffer.alloc(64 * 1024, 1);
  chunks.length = 0;
  globalThis.gc();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const before = anonymousKiB();
  const released = trimMalloc();
  process.stdout.write(JSON.stringify({ released, before, after: anonymousKiB(), kept: kept.length }));`;

describe("trimMalloc", () => {
  it("returns malloc's free pages below a live allocation to the kernel", () => {
    const result = JSON.parse(execFileSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script]).toString()) as { released: boolean; before: number; after: number };
    assert.equal(result.released, true, "malloc_trim released memory");
    assert.ok(result.before - result.after >= 32 * 1024, `anonymous RSS ${result.before} → ${result.after} KiB: less than 32 MiB given back`);
  });
});

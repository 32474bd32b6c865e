import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const script = fileURLToPath(new URL("./fixtures/shutdown.ts", import.meta.url));

async function runUntilReady() {
  const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
  const lines: string[] = [];
  const reader = createInterface({ input: child.stdout });
  let onReady: () => void;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  reader.on("line", (line) => {
    lines.push(line);
    if (line === "ready") onReady();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await Promise.race([ready, exited]);
  return { child, lines, exited };
}

describe("onShutdown", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`turns ${signal} into an abort, after calling the handler, and lets the process end normally`, async () => {
      const { child, lines, exited } = await runUntilReady();
      child.kill(signal);
      assert.equal(await exited, 0);
      assert.deepEqual(lines, ["ready", `handler ${signal}`, `stopped ${signal}`]);
    });
  }
});

// `--workers`: real worker processes sharing one port. The fleet counts as ready only once every worker
// listens AND has compiled a route table (a worker without one would answer 404 to everything), and stops
// being ready when it stops.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createLogger } from "@bollard/core";
import { generateDefaultCertificate } from "../src/index.ts";
import { startWorkers, type WorkerFleet } from "../src/process/workers.ts";
import { type Backend, snapshotOf, startBackend } from "./helpers/backends.ts";
import { json, send } from "./helpers/client.ts";
import { freePort } from "./helpers/wait.ts";

/** Retries `check` until it stops throwing; the deadline only bounds a hung test, it is not a timing claim. */
async function eventually(what: string, check: () => void | Promise<void>, deadlineMs = 20_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > until) throw new Error(`${what}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe("worker fleet readiness", () => {
  let backend: Backend;
  let fleet: WorkerFleet;
  let port: number;
  before(async () => {
    backend = await startBackend("w");
    port = await freePort();
    fleet = startWorkers(2, { proxy: { defaultCertificate: generateDefaultCertificate() }, listen: { host: "127.0.0.1", httpPort: port, httpsPort: null }, logLevel: "warn" }, createLogger({ name: "workers-test", level: "warn" }));
    await fleet.listening;
  });
  after(async () => {
    await fleet?.shutdown(1000);
    await backend?.close();
  });

  test("listening without a route table: not ready (and the port answers 404)", async () => {
    assert.equal(fleet.isReady(), false);
    assert.equal((await send(port, { host: "w.test" })).status, 404);
  });

  test("once every worker has compiled the table: ready, and served", async () => {
    fleet.send(snapshotOf([{ name: "w", routes: [{ host: "w.test", service: "w", ports: [backend.port] }] }]), {});
    await eventually("fleet ready", () => assert.equal(fleet.isReady(), true));
    // Fresh connections spread over both workers; every one of them has the table now.
    for (let i = 0; i < 8; i++) assert.equal(json<{ backend: string }>(await send(port, { host: "w.test" })).backend, "w");
  });

  test("stopping: not ready", async () => {
    await fleet.shutdown(1000);
    assert.equal(fleet.isReady(), false);
  });
});

// Configuration changes and shutdown: tables swap under load with no failed request, requests finish on the
// table they started with, and SIGTERM-style shutdown lets in-flight requests finish.
import assert from "node:assert/strict";
import { Agent } from "node:http";
import { describe, test } from "node:test";
import { createProxy, emptyRouteTable, generateDefaultCertificate } from "../src/index.ts";
import { startBackend, tableOf } from "./helpers/backends.ts";
import { send } from "./helpers/client.ts";

const defaultCertificate = generateDefaultCertificate();

describe("table swaps", () => {
  test("2000 keep-alive requests while the table is swapped every millisecond: zero failures", async () => {
    const a = await startBackend("a");
    const b = await startBackend("b");
    const proxy = createProxy({ defaultCertificate });
    const { httpPort: port } = await proxy.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: null });
    const tables = [
      tableOf([{ name: "s", routes: [{ host: "s.test", path: "/", service: "a", ports: [a.port] }] }]),
      tableOf([{ name: "s", routes: [{ host: "s.test", path: "/", service: "b", ports: [b.port] }] }]),
    ];
    proxy.setTable(tables[0] as (typeof tables)[0]);
    let swaps = 0;
    const swapper = setInterval(() => proxy.setTable(tables[++swaps % 2] as (typeof tables)[0]), 1);
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    try {
      const statuses = new Map<number, number>();
      let next = 0;
      const worker = async () => {
        while (next < 2000) {
          next++;
          const r = await send(port, { host: "s.test", path: "/x", agent, method: next % 3 === 0 ? "POST" : "GET", ...(next % 3 === 0 ? { body: "payload" } : {}) });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      assert.deepEqual([...statuses], [[200, statuses.get(200)]]);
      assert.ok(swaps > 10, `swapped ${swaps} times`);
      assert.ok(a.requests > 0 && b.requests > 0);
    } finally {
      clearInterval(swapper);
      agent.destroy();
      await proxy.shutdown(1000);
      await a.close();
      await b.close();
    }
  });

  test("a request in flight finishes on the table it started with", async () => {
    let release: () => void = () => {};
    const slow = await startBackend("slow", async (_req, res) => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      res.end("done");
      return true;
    });
    const proxy = createProxy({ defaultCertificate });
    const { httpPort: port } = await proxy.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: null });
    try {
      proxy.setTable(tableOf([{ name: "s", routes: [{ host: "slow.test", service: "slow", ports: [slow.port] }] }]));
      const pending = send(port, { host: "slow.test" });
      while (slow.requests === 0) await new Promise((r) => setTimeout(r, 5));
      proxy.setTable(emptyRouteTable()); // the route and its endpoint are gone from the new table
      assert.equal((await send(port, { host: "slow.test" })).status, 404);
      release();
      const r = await pending;
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), "done");
    } finally {
      await proxy.shutdown(1000);
      await slow.close();
    }
  });
});

describe("graceful shutdown", () => {
  test("stops accepting, lets the in-flight request finish, then resolves", async () => {
    let release: () => void = () => {};
    const slow = await startBackend("slow", async (_req, res) => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      res.end("finished");
      return true;
    });
    const proxy = createProxy({ defaultCertificate });
    const { httpPort: port } = await proxy.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: null });
    try {
      proxy.setTable(tableOf([{ name: "s", routes: [{ host: "slow.test", service: "slow", ports: [slow.port] }] }]));
      const pending = send(port, { host: "slow.test" });
      while (slow.requests === 0) await new Promise((r) => setTimeout(r, 5));
      let shutDown = false;
      const stopping = proxy.shutdown(10_000).then(() => {
        shutDown = true;
      });
      await new Promise((r) => setTimeout(r, 50));
      await assert.rejects(send(port, { host: "slow.test" }), /ECONNREFUSED/);
      assert.equal(shutDown, false);
      release();
      const r = await pending;
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), "finished");
      await stopping;
    } finally {
      await slow.close();
    }
  });

  test("the deadline cuts requests that do not finish", async () => {
    const stuck = await startBackend("stuck", () => true);
    const proxy = createProxy({ defaultCertificate });
    const { httpPort: port } = await proxy.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: null });
    try {
      proxy.setTable(tableOf([{ name: "s", routes: [{ host: "stuck.test", service: "stuck", ports: [stuck.port] }] }]));
      const pending = send(port, { host: "stuck.test" }).then(
        () => "answered",
        () => "cut",
      );
      while (stuck.requests === 0) await new Promise((r) => setTimeout(r, 5));
      await proxy.shutdown(200);
      assert.equal(await pending, "cut");
    } finally {
      await stuck.close();
    }
  });
});


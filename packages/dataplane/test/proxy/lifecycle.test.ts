// Configuration changes and shutdown of the data plane: tables swap under load with no failed request,
// requests finish on the table they started with, and shutdown (SIGTERM's drain) lets in-flight requests finish
// until its deadline and closes the ports.
import assert from "node:assert/strict";
import { Agent } from "node:http";
import { test } from "node:test";
import { emptyRouteTable, type RouteTable } from "@bollard/ingress";
import { type Echo, startBackend, tableOf } from "../../../ingress/test/helpers/backends.ts";
import { json, send } from "../../../ingress/test/helpers/client.ts";
import { eachPlane } from "../planes.ts";

eachPlane("table swaps", (kind) => {
  test("2000 keep-alive requests while the table is swapped every millisecond: zero failures", async () => {
    const a = await startBackend("a");
    const b = await startBackend("b");
    const plane = await kind.start();
    const tables: RouteTable[] = [
      tableOf([{ name: "s", routes: [{ host: "s.test", path: "/", service: "a", ports: [a.port] }] }]),
      tableOf([{ name: "s", routes: [{ host: "s.test", path: "/", service: "b", ports: [b.port] }] }]),
    ];
    plane.setTable(tables[0] as RouteTable);
    let swaps = 0;
    const swapper = setInterval(() => plane.setTable(tables[++swaps % 2] as RouteTable), 1);
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    try {
      const statuses = new Map<number, number>();
      let next = 0;
      const worker = async () => {
        while (next < 2000) {
          next++;
          const r = await send(plane.httpPort, { host: "s.test", path: "/x", agent, method: next % 3 === 0 ? "POST" : "GET", ...(next % 3 === 0 ? { body: "payload" } : {}) });
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
      await plane.shutdown(1000);
      await a.close();
      await b.close();
    }
  });

  test("a request in flight finishes on the table it started with; the next one meets the new table, on the same listener", async () => {
    let release: () => void = () => {};
    const slow = await startBackend("slow", async (_req, res) => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      res.end("done");
      return true;
    });
    const fresh = await startBackend("new");
    const plane = await kind.start();
    try {
      plane.setTable(tableOf([{ name: "s", routes: [{ host: "slow.test", service: "slow", ports: [slow.port] }] }]));
      const pending = send(plane.httpPort, { host: "slow.test" });
      while (slow.requests === 0) await new Promise((r) => setTimeout(r, 5));
      plane.setTable(emptyRouteTable()); // the route and its endpoint are gone from the new table
      assert.equal((await send(plane.httpPort, { host: "slow.test" })).status, 404);
      plane.setTable(tableOf([{ name: "s", routes: [{ host: "slow.test", service: "new", ports: [fresh.port] }] }]));
      assert.equal(json<Echo>(await send(plane.httpPort, { host: "slow.test" })).backend, "new");
      release();
      const r = await pending;
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), "done");
    } finally {
      await plane.shutdown(1000);
      await slow.close();
      await fresh.close();
    }
  });
});

eachPlane("graceful shutdown", (kind) => {
  test("stops accepting, lets the in-flight request finish, then resolves", async () => {
    let release: () => void = () => {};
    const slow = await startBackend("slow", async (_req, res) => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      res.end("finished");
      return true;
    });
    const plane = await kind.start();
    try {
      plane.setTable(tableOf([{ name: "s", routes: [{ host: "slow.test", service: "slow", ports: [slow.port] }] }]));
      const pending = send(plane.httpPort, { host: "slow.test" });
      while (slow.requests === 0) await new Promise((r) => setTimeout(r, 5));
      let shutDown = false;
      const stopping = plane.shutdown(10_000).then(() => {
        shutDown = true;
      });
      await new Promise((r) => setTimeout(r, 50));
      await assert.rejects(send(plane.httpPort, { host: "slow.test" }), /ECONNREFUSED/);
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
    const plane = await kind.start();
    try {
      plane.setTable(tableOf([{ name: "s", routes: [{ host: "stuck.test", service: "stuck", ports: [stuck.port] }] }]));
      const pending = send(plane.httpPort, { host: "stuck.test" }).then(
        () => "answered",
        () => "cut",
      );
      while (stuck.requests === 0) await new Promise((r) => setTimeout(r, 5));
      await plane.shutdown(200);
      assert.equal(await pending, "cut");
    } finally {
      await stuck.close();
    }
  });
});

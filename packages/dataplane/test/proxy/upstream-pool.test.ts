// The keep-alive pool to the upstreams (native/src/upstream.rs): connections are reused, closed once idle past
// `upstreamKeepAliveTimeout`, and a request whose idle connection the upstream closed meanwhile goes on a new one
// (never a 502); an upstream that ends its connection after an answer, or before finishing one, costs only that.
import assert from "node:assert/strict";
import { Agent } from "node:http";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { startBackend, tableOf } from "../../../ingress/test/helpers/backends.ts";
import { rawExchange, send, statusOf } from "../../../ingress/test/helpers/client.ts";
import { eachPlane } from "../planes.ts";

/** The backend's connections as they open and close. */
function watchConnections(server: import("node:http").Server): { opened: () => number; open: () => number; closedOne: () => Promise<void> } {
  const sockets = new Set<Socket>();
  let opened = 0;
  let onClose: (() => void) | undefined;
  server.on("connection", (socket: Socket) => {
    opened++;
    sockets.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      onClose?.();
    });
  });
  return {
    opened: () => opened,
    open: () => sockets.size,
    closedOne: () =>
      new Promise<void>((resolve) => {
        onClose = resolve;
      }),
  };
}

eachPlane("upstream keep-alive pool", (kind) => {
  test("sequential requests from one client connection share one upstream connection", async () => {
    const backend = await startBackend("a");
    const conns = watchConnections(backend.server);
    const plane = await kind.start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      plane.setTable(tableOf([{ name: "a", routes: [{ host: "a.test", service: "a", ports: [backend.port] }] }]));
      for (let i = 0; i < 50; i++) {
        const r = await send(plane.httpPort, { host: "a.test", path: `/${i}`, agent, method: i % 2 === 0 ? "GET" : "POST", ...(i % 2 === 0 ? {} : { body: "x".repeat(i) }) });
        assert.equal(r.status, 200);
      }
      assert.equal(backend.requests, 50);
      assert.equal(conns.opened(), 1);
    } finally {
      agent.destroy();
      await plane.shutdown(1000);
      await backend.close();
    }
  });

  test("an idle upstream connection is closed after upstreamKeepAliveTimeout", async () => {
    const backend = await startBackend("b");
    backend.server.keepAliveTimeout = 60_000;
    const conns = watchConnections(backend.server);
    const plane = await kind.start({ upstreamKeepAliveTimeout: 200 });
    try {
      plane.setTable(tableOf([{ name: "b", routes: [{ host: "b.test", service: "b", ports: [backend.port] }] }]));
      const closed = conns.closedOne();
      assert.equal((await send(plane.httpPort, { host: "b.test" })).status, 200);
      await closed; // the plane closes it (the backend would keep it a minute; the test's own bound is the runner's)
      assert.equal(conns.open(), 0);
      // and the next request opens another
      assert.equal((await send(plane.httpPort, { host: "b.test" })).status, 200);
      assert.equal(conns.opened(), 2);
    } finally {
      await plane.shutdown(1000);
      await backend.close();
    }
  });

  test("an idle connection the upstream closed is not used: the next request goes on a new one", async () => {
    const backend = await startBackend("c");
    backend.server.keepAliveTimeout = 50; // the backend closes idle connections long before the plane would
    const conns = watchConnections(backend.server);
    const plane = await kind.start({ upstreamKeepAliveTimeout: 60_000 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      plane.setTable(tableOf([{ name: "c", routes: [{ host: "c.test", service: "c", ports: [backend.port] }] }]));
      for (let i = 0; i < 3; i++) {
        const closed = conns.closedOne();
        const r = await send(plane.httpPort, { host: "c.test", agent, method: i === 1 ? "POST" : "GET", ...(i === 1 ? { body: "payload" } : {}) });
        assert.equal(r.status, 200);
        await closed;
        await sleep(50); // (the close has reached the plane's side of the connection)
      }
      assert.equal(conns.opened(), 3);
      assert.equal(plane.responses(5), 0);
    } finally {
      agent.destroy();
      await plane.shutdown(1000);
      await backend.close();
    }
  });

  test("an upstream that closes after its answer (Connection: close), or mid-answer, costs only that answer", async () => {
    let mode: "close" | "cut" | "ok" = "close";
    const backend = await startBackend("d", (_req, res) => {
      if (mode === "close") {
        res.writeHead(200, { connection: "close", "content-length": "6" }).end("closed");
      } else if (mode === "cut") {
        res.writeHead(200, { "content-length": "100" });
        res.write("partial");
        setTimeout(() => res.socket?.destroy(), 20);
      } else {
        res.writeHead(200, { "content-length": "2" }).end("ok");
      }
      return true;
    });
    const plane = await kind.start();
    try {
      plane.setTable(tableOf([{ name: "d", routes: [{ host: "d.test", service: "d", ports: [backend.port] }] }]));
      const closed = await send(plane.httpPort, { host: "d.test" });
      assert.equal(closed.status, 200);
      assert.equal(closed.body.toString(), "closed");
      mode = "cut";
      // the head went out before the upstream failed: the client connection ends without the rest
      const cut = await rawExchange(plane.httpPort, "GET / HTTP/1.1\r\nHost: d.test\r\n\r\n");
      assert.equal(statusOf(cut), 200);
      assert.equal(cut.slice(cut.indexOf("\r\n\r\n") + 4), "partial");
      mode = "ok";
      const after = await send(plane.httpPort, { host: "d.test" });
      assert.equal(after.status, 200);
      assert.equal(after.body.toString(), "ok");
    } finally {
      await plane.shutdown(1000);
      await backend.close();
    }
  });
});

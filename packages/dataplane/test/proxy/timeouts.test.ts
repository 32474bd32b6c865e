// Timeouts and budgets of the data plane: client keep-alive and whole-request timeouts, a timeout on an
// upstream body gone silent, 499 for a client gone before the answer, and a per-second budget of HTTP/2 stream
// resets.
import assert from "node:assert/strict";
import { connect as connectH2, constants } from "node:http2";
import { request } from "node:http";
import { connect } from "node:net";
import { test } from "node:test";
import { generateSelfSignedCertificate } from "@bollard/ingress";
import { startBackend, tableOf, tlsSecret } from "../../../ingress/test/helpers/backends.ts";
import { send, statusOf } from "../../../ingress/test/helpers/client.ts";
import { eachPlane } from "../planes.ts";

eachPlane("client timeouts", (kind) => {
  test("an idle keep-alive connection is closed after the keep-alive timeout", async () => {
    const backend = await startBackend("k");
    const plane = await kind.start({ keepAliveTimeout: 300 });
    try {
      plane.setTable(tableOf([{ name: "k", routes: [{ host: "k.test", service: "k", ports: [backend.port] }] }]));
      const socket = connect(plane.httpPort, "127.0.0.1");
      let received = "";
      socket.setEncoding("latin1");
      socket.on("data", (c: string) => {
        received += c;
      });
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      socket.write("GET / HTTP/1.1\r\nHost: k.test\r\n\r\n");
      await closed; // the plane closes it once idle past the timeout (the test's own bound is the runner's)
      assert.equal(statusOf(received), 200);
    } finally {
      await plane.shutdown(1000);
      await backend.close();
    }
  });

  test("a request whose body does not all arrive within the request timeout → 408, even while bytes trickle in", async () => {
    const backend = await startBackend("r");
    const plane = await kind.start({ requestTimeout: 500, headersTimeout: 400, clientBodyTimeout: 60_000 });
    try {
      plane.setTable(tableOf([{ name: "r", routes: [{ host: "r.test", service: "r", ports: [backend.port] }] }]));
      const socket = connect(plane.httpPort, "127.0.0.1");
      let received = "";
      socket.setEncoding("latin1");
      socket.on("data", (c: string) => {
        received += c;
      });
      socket.on("error", () => {});
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      socket.write("POST / HTTP/1.1\r\nHost: r.test\r\nContent-Length: 100\r\n\r\n");
      const trickle = setInterval(() => socket.writable && socket.write("x"), 50); // never silent for long
      await closed;
      clearInterval(trickle);
      assert.equal(statusOf(received), 408);
      assert.equal(backend.requests, 0);
    } finally {
      await plane.shutdown(1000);
      await backend.close();
    }
  });
});

eachPlane("an upstream body gone silent", (kind) => {
  test("a response whose body stalls past the read timeout is cut, not left open", async () => {
    const stalled = await startBackend("stall", (_req, res) => {
      res.writeHead(200, { "content-length": 10 });
      res.write("12345"); // and never the rest
      return true;
    });
    const plane = await kind.start({ readTimeout: 300 });
    try {
      plane.setTable(tableOf([{ name: "s", routes: [{ host: "s.test", service: "stall", ports: [stalled.port] }] }]));
      const outcome = await send(plane.httpPort, { host: "s.test" }).then(
        (r) => `answered ${r.body.length} bytes`,
        (err: Error) => `cut: ${err.message}`,
      );
      assert.match(outcome, /^cut: /);
    } finally {
      await plane.shutdown(1000);
      await stalled.close();
    }
  });
});

eachPlane("a client gone before the answer", (kind) => {
  test("is counted as 499 (nginx's client closed request)", async () => {
    let started: () => void = () => {};
    const seen = new Promise<void>((resolve) => {
      started = resolve;
    });
    const slow = await startBackend("slow", async (_req, res) => {
      started();
      await new Promise((r) => setTimeout(r, 1_000));
      res.end("late");
      return true;
    });
    const plane = await kind.start();
    try {
      plane.setTable(tableOf([{ name: "s", routes: [{ host: "s.test", service: "slow", ports: [slow.port] }] }]));
      const before = plane.clientGone();
      const answered = plane.responses(2) + plane.responses(4) + plane.responses(5);
      const req = request({ host: "127.0.0.1", port: plane.httpPort, path: "/", headers: { host: "s.test" }, agent: false });
      req.on("error", () => {});
      req.end();
      await seen;
      req.destroy();
      const until = Date.now() + 10_000;
      while (plane.clientGone() === before && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(plane.clientGone() - before, 1);
      assert.equal(plane.responses(2) + plane.responses(4) + plane.responses(5), answered, "counted as 499 only");
    } finally {
      await plane.shutdown(1000);
      await slow.close();
    }
  });
});

eachPlane("HTTP/2 reset budget", (kind) => {
  test("a client resetting more streams per second than its budget gets GOAWAY; a well-behaved one on its own connection is served", async () => {
    const backend = await startBackend("h");
    const cert = generateSelfSignedCertificate("h.test", ["h.test"]);
    const plane = await kind.start({ http2MaxResetsPerSecond: 5 }, { https: true });
    try {
      plane.setTable(tableOf([{ name: "h", tls: [{ hosts: ["h.test"], secretName: "h-tls" }], routes: [{ host: "h.test", service: "h", ports: [backend.port] }] }], [tlsSecret("h-tls", cert)]));
      const attacker = connectH2(`https://127.0.0.1:${plane.httpsPort}`, { servername: "h.test", rejectUnauthorized: false });
      attacker.on("error", () => {});
      const goaway = new Promise<void>((resolve) => attacker.once("goaway", () => resolve()));
      await new Promise<void>((resolve) => attacker.once("remoteSettings", () => resolve()));
      // 5 a second with a burst of 10 s' worth: 200 resets at once are past it
      for (let i = 0; i < 200 && !attacker.closed && !attacker.destroyed; i++) {
        try {
          const stream = attacker.request({ ":path": "/", ":authority": "h.test" });
          stream.on("error", () => {});
          stream.close(constants.NGHTTP2_CANCEL);
        } catch {
          break;
        }
      }
      await goaway;
      attacker.destroy();
      const victim = connectH2(`https://127.0.0.1:${plane.httpsPort}`, { servername: "h.test", rejectUnauthorized: false });
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const stream = victim.request({ ":path": "/", ":authority": "h.test" });
          stream.on("response", (h) => resolve(Number(h[":status"])));
          stream.on("error", reject);
          stream.resume();
        });
        assert.equal(status, 200);
      } finally {
        victim.close();
      }
    } finally {
      await plane.shutdown(1000);
      await backend.close();
    }
  });
});


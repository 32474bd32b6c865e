import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, describe, it } from "node:test";
import { Counter } from "prom-client";
import { createLogger, createMetricsRegistry, type HealthServer, startHealthServer } from "../src/index.ts";

describe("health server", () => {
  const logger = createLogger({ name: "health-test", level: "silent" });
  const registry = createMetricsRegistry();
  const requests = new Counter({ name: "bollard_test_requests_total", help: "test counter", registers: [registry] });
  let ready = false;
  let healthy = true;
  let server: HealthServer;
  const get = async (path: string, method = "GET") => {
    const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method });
    return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
  };

  after(() => server?.close());

  it("listens on an ephemeral port", async () => {
    server = await startHealthServer({
      port: 0,
      host: "127.0.0.1",
      registry,
      isReady: () => ready,
      isHealthy: () => healthy,
      logger,
    });
    assert.ok(server.port > 0);
  });

  it("serves the registry's metrics in Prometheus text format, default metrics included", async () => {
    requests.inc(3);
    const res = await get("/metrics");
    assert.equal(res.status, 200);
    assert.match(res.type ?? "", /^text\/plain/);
    assert.match(res.body, /^bollard_test_requests_total 3$/m);
    assert.match(res.body, /^process_cpu_user_seconds_total /m);
    assert.match(res.body, /^nodejs_eventloop_lag_seconds /m);
  });

  it("reflects readiness and health as they change", async () => {
    assert.equal((await get("/readyz")).status, 503);
    ready = true;
    assert.deepEqual(await get("/readyz"), { status: 200, type: "text/plain", body: "ok\n" });
    assert.equal((await get("/healthz")).status, 200);
    healthy = false;
    assert.equal((await get("/healthz")).status, 503);
    assert.equal((await get("/healthz?verbose")).status, 503);
  });

  it("answers 404 for other paths and 405 for other methods", async () => {
    assert.equal((await get("/")).status, 404);
    assert.equal((await get("/metrics", "POST")).status, 405);
    assert.equal((await get("/readyz", "HEAD")).status, 200);
  });

  it("answers 500 and logs when a probe throws", async () => {
    const lines = new PassThrough();
    const captured: string[] = [];
    lines.on("data", (chunk: Buffer) => captured.push(chunk.toString()));
    const failing = await startHealthServer({
      port: 0,
      host: "127.0.0.1",
      registry,
      isReady: () => {
        throw new Error("probe exploded");
      },
      logger: createLogger({ name: "health-test", level: "error", destination: lines }),
    });
    try {
      const res = await fetch(`http://127.0.0.1:${failing.port}/readyz`);
      assert.equal(res.status, 500);
      assert.match(captured.join(""), /probe exploded/);
    } finally {
      await failing.close();
    }
  });

  it("reports a port already in use", async () => {
    await assert.rejects(
      startHealthServer({ port: server.port, host: "127.0.0.1", registry, isReady: () => true, logger }),
      /EADDRINUSE/,
    );
  });
});

// The data plane's observable behaviour, against real loopback backends and sockets: request durations and
// upstream times as histograms under the metric names, labels and buckets dashboards use (read at scrape
// time); 499 for a client gone before its answer; the keep-alive, headers and request timeouts; a cut answer when
// the upstream's body goes silent; the HTTP/2 reset budget and a CONTINUATION flood; log lines reaching pino in
// batches, with the request id.
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { createLogger } from "@bollard/core";
import { generateDefaultCertificate } from "@bollard/ingress";
import { Registry } from "prom-client";
import { type Backend, startBackend, tableOf } from "../../ingress/test/helpers/backends.ts";
import { send } from "../../ingress/test/helpers/client.ts";
import { eventually } from "../../ingress/test/helpers/wait.ts";
import { ERROR, FRAME, frame, headerBlock, headers, openRawH2, requestFields, rstStream, wellBehavedStatus } from "../../ingress/test/hostile/h2-raw.ts";
import { createDataPlane, type DataPlane, type DataPlaneOptions, registerDataPlaneMetrics } from "../src/index.ts";

const defaultCertificate = generateDefaultCertificate();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A backend: `/slow?ms=N` answers after N ms, `/stall` sends its head and a first chunk, then nothing for 5 s. */
async function startTimedBackend(name: string): Promise<Backend & { aborted: number }> {
  const counts = { aborted: 0 };
  const backend = await startBackend(name, async (req: IncomingMessage, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/slow") {
      req.socket.once("close", () => {
        if (!res.writableEnded) counts.aborted++;
      });
      await sleep(Number(url.searchParams.get("ms") ?? "0"));
      if (!res.destroyed) res.end("slow\n");
      return true;
    }
    if (url.pathname === "/stall") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("first chunk\n");
      await sleep(5_000);
      if (!res.destroyed) res.end("late\n");
      return true;
    }
    return false;
  });
  return Object.defineProperty(backend, "aborted", { get: () => counts.aborted }) as Backend & { aborted: number };
}

function startPlane(options: Partial<DataPlaneOptions> = {}): { plane: DataPlane; port: number; httpsPort: number } {
  const plane = createDataPlane({ defaultCertificate, ...options });
  const ports = plane.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: 0, workers: 2 });
  return { plane, port: ports.httpPort, httpsPort: ports.httpsPort ?? 0 };
}

/** The value of one exposition line (`name{labels} value`) whose name and labels contain every part. */
function sample(text: string, name: string, ...parts: string[]): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (parts.every((p) => line.includes(p))) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return undefined;
}

/** A raw HTTP/1.1 connection: what it received, and whether the server closed it. */
function openRaw(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<void>; isClosed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    let closed = false;
    socket.setEncoding("latin1");
    socket.on("data", (c: string) => {
      received += c;
    });
    socket.on("error", () => {});
    const closedPromise = new Promise<void>((done) =>
      socket.once("close", () => {
        closed = true;
        done();
      }),
    );
    socket.once("connect", () => resolve({ socket, received: () => received, closed: closedPromise, isClosed: () => closed }));
    socket.once("error", reject);
  });
}

/** The metrics `bollard ingress` exposes for its data plane: what dashboards and alerts are written against. */
const METRICS: { name: string; type: string; labels: string[] }[] = [
  { name: "bollard_ingress_active_connections", type: "gauge", labels: [] },
  { name: "bollard_ingress_request_duration_seconds", type: "histogram", labels: ["ingress"] },
  { name: "bollard_ingress_requests_total", type: "counter", labels: ["ingress", "service", "status"] },
  { name: "bollard_ingress_route_table_swaps_total", type: "counter", labels: [] },
  { name: "bollard_ingress_upstream_response_seconds", type: "histogram", labels: ["ingress", "service"] },
];
/** the histograms' bucket bounds, seconds */
const BUCKETS = ["0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf"];

describe("metrics", () => {
  let backend: Backend & { aborted: number };
  let plane: DataPlane;
  let port: number;
  const registry = new Registry();
  before(async () => {
    backend = await startTimedBackend("m");
    ({ plane, port } = startPlane());
    registerDataPlaneMetrics(plane, registry);
    plane.setTable(tableOf([{ name: "web", routes: [{ host: "m.test", service: "m", ports: [backend.port] }] }]));
  });
  after(async () => {
    await plane.shutdown(1000);
    await backend.close();
  });

  test("the metric names, types and labels of the table", async () => {
    const shape = (await registry.getMetricsAsJSON()).map((m) => `${m.name} ${m.type}`).sort();
    assert.deepEqual(shape, METRICS.map((m) => `${m.name} ${m.type}`));
    for (const m of METRICS) assert.deepEqual((registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] }).labelNames ?? [], m.labels, m.name);
  });

  test("request durations and upstream times land in the table's buckets, by Ingress (and Service)", async () => {
    for (let i = 0; i < 3; i++) assert.equal((await send(port, { host: "m.test", path: "/slow?ms=300" })).status, 200);
    assert.equal((await send(port, { host: "nowhere.test" })).status, 404);
    const text = await registry.metrics();
    const duration = "bollard_ingress_request_duration_seconds";
    const ingress = 'ingress="default/web"';
    // 300 ms: past the 0.25 s bound, within the 0.5 s one
    assert.equal(sample(text, `${duration}_bucket`, ingress, 'le="0.25"'), 0);
    assert.equal(sample(text, `${duration}_bucket`, ingress, 'le="0.5"'), 3);
    assert.equal(sample(text, `${duration}_bucket`, ingress, 'le="+Inf"'), 3);
    assert.equal(sample(text, `${duration}_count`, ingress), 3);
    const sum = sample(text, `${duration}_sum`, ingress) ?? 0;
    assert.ok(sum >= 0.9 && sum < 1.5, `sum ${sum}`);
    // every bucket bound, in order
    const bounds = text
      .split("\n")
      .filter((l) => l.startsWith(`${duration}_bucket{`) && l.includes(ingress))
      .map((l) => /le="([^"]+)"/.exec(l)?.[1]);
    assert.deepEqual(bounds, BUCKETS);
    // a request no route took: ingress ""
    assert.equal(sample(text, `${duration}_count`, 'ingress=""'), 1);
    const upstream = "bollard_ingress_upstream_response_seconds";
    assert.equal(sample(text, `${upstream}_bucket`, ingress, 'service="m"', 'le="0.5"'), 3);
    assert.equal(sample(text, `${upstream}_count`, ingress, 'service="m"'), 3);
    assert.equal(sample(text, `${upstream}_count`, 'ingress=""'), undefined, "a 404 never went upstream");
  });

  test("499 for a client gone before its answer (FIN or RST): counted, and its upstream request abandoned", async () => {
    const before = plane.counters().clientGone;
    for (const leave of ["end", "reset"] as const) {
      const seen = backend.requests;
      const raw = await openRaw(port);
      raw.socket.write("GET /slow?ms=3000 HTTP/1.1\r\nHost: m.test\r\n\r\n");
      await eventually("the request reaches the backend", async () => assert.ok(backend.requests > seen));
      if (leave === "end") raw.socket.end();
      else raw.socket.resetAndDestroy();
    }
    await eventually("both counted as 499", async () => assert.equal(plane.counters().clientGone - before, 2));
    const text = await registry.metrics();
    assert.equal(sample(text, "bollard_ingress_requests_total", 'ingress="default/web"', 'service="m"', 'status="499"'), 2);
    // (the backend sees its connection closed before it could answer)
    await eventually("the upstream requests are abandoned", async () => assert.equal(backend.aborted, 2));
  });
});

describe("client timeouts", () => {
  let backend: Backend & { aborted: number };
  before(async () => {
    backend = await startTimedBackend("t");
  });
  after(async () => {
    await backend.close();
  });
  const table = () => tableOf([{ name: "t", routes: [{ host: "t.test", service: "t", ports: [backend.port] }] }]);

  test("an idle keep-alive connection is closed after keepAliveTimeout, not the (longer) headers timeout", async () => {
    const { plane, port } = startPlane({ keepAliveTimeout: 300, headersTimeout: 60_000 });
    plane.setTable(table());
    try {
      const raw = await openRaw(port);
      raw.socket.write("GET /slow?ms=0 HTTP/1.1\r\nHost: t.test\r\n\r\n");
      await eventually("answered", async () => assert.match(raw.received(), /slow\n$/));
      const closed = await Promise.race([raw.closed.then(() => true), sleep(10_000).then(() => false)]);
      assert.ok(closed, "the idle connection was not closed within 10 s");
      assert.doesNotMatch(raw.received(), /408/, "an idle connection is closed quietly");
    } finally {
      await plane.shutdown(1000);
    }
  });

  test("the headers timeout counts from a head's first byte (→ 408), not while the connection is idle", async () => {
    const { plane, port } = startPlane({ keepAliveTimeout: 60_000, headersTimeout: 400 });
    plane.setTable(table());
    try {
      const raw = await openRaw(port);
      raw.socket.write("GET /slow?ms=0 HTTP/1.1\r\nHost: t.test\r\n\r\n");
      await eventually("answered", async () => assert.match(raw.received(), /slow\n$/));
      // idle for several headers timeouts: still open, and a whole request is served
      await sleep(1_500);
      assert.equal(raw.isClosed(), false, "an idle connection was closed by the headers timeout");
      raw.socket.write("GET /slow?ms=0 HTTP/1.1\r\nHost: t.test\r\n\r\n");
      await eventually("answered again", async () => assert.equal(raw.received().match(/slow\n/g)?.length, 2));
      // a head that never ends
      raw.socket.write("GET /slow?ms=0 HTTP/1.1\r\nHost: t.te");
      await Promise.race([raw.closed, sleep(10_000)]);
      assert.ok(raw.isClosed(), "a head that never ended kept its connection");
      assert.match(raw.received(), /HTTP\/1\.1 408 /);
    } finally {
      await plane.shutdown(1000);
    }
  });

  test("a request body trickling in past the request timeout → 408, though no pause reaches the body timeout", async () => {
    const { plane, port } = startPlane({ requestTimeout: 600, headersTimeout: 600, clientBodyTimeout: 60_000 });
    plane.setTable(table());
    try {
      const raw = await openRaw(port);
      raw.socket.write("POST /slow?ms=0 HTTP/1.1\r\nHost: t.test\r\nContent-Length: 100\r\n\r\n");
      for (let i = 0; i < 40 && !raw.isClosed(); i++) {
        raw.socket.write("x");
        await sleep(100);
      }
      await eventually("answered", async () => assert.match(raw.received(), /^HTTP\/1\.1 408 /));
    } finally {
      await plane.shutdown(1000);
    }
  });
});

describe("upstream body silence and the log batches", () => {
  test("an upstream body silent past the read timeout ends the client's connection, counted and logged with the request id", async () => {
    const backend = await startTimedBackend("s");
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString("utf8").split("\n")) if (line !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const logger = createLogger({ name: "parity", level: "info", destination });
    const { plane, port } = startPlane({ readTimeout: 400, logger, accessLog: true, logInterval: 100 });
    plane.setTable(tableOf([{ name: "s", routes: [{ host: "s.test", service: "s", ports: [backend.port] }] }]));
    try {
      const raw = await openRaw(port);
      raw.socket.write("GET /stall HTTP/1.1\r\nHost: s.test\r\nX-Request-ID: stall-1\r\n\r\n");
      await Promise.race([raw.closed, sleep(4_000)]);
      assert.ok(raw.isClosed(), "the client connection stayed open after the upstream went silent");
      assert.match(raw.received(), /first chunk/);
      assert.doesNotMatch(raw.received(), /late/);
      assert.equal(plane.counters().upstreamTimeouts, 1);
      for (let i = 0; i < 5; i++) await send(port, { host: "s.test", path: "/slow?ms=0", headers: { "x-request-id": `fast-${i}` } });
      await eventually("the lines reach pino", async () => {
        const warning = lines.find((l) => l.msg === "upstream response body silent past the read timeout");
        assert.ok(warning, JSON.stringify(lines));
        assert.equal(warning.requestId, "stall-1");
        assert.equal(warning.ingress, "default/s");
        assert.equal(warning.level, 40); // pino's warn
        const access = lines.filter((l) => l.msg === "request" && String(l.requestId).startsWith("fast-"));
        assert.equal(access.length, 5);
        assert.equal(access[0]?.status, 200);
      });
    } finally {
      await plane.shutdown(1000);
      await backend.close();
    }
  });
});

describe("HTTP/2 abuse", () => {
  let backend: Backend & { aborted: number };
  let plane: DataPlane;
  let httpsPort: number;
  before(async () => {
    backend = await startTimedBackend("h");
    ({ plane, httpsPort } = startPlane({ http2MaxResetsPerSecond: 2, requestBufferSize: 0 }));
    plane.setTable(tableOf([{ name: "h", routes: [{ host: "foo.test", service: "h", ports: [backend.port] }] }]));
  });
  after(async () => {
    await plane.shutdown(1000);
    await backend.close();
  });

  const wellBehaved = () => wellBehavedStatus(httpsPort, { authority: "foo.test", path: "/slow?ms=0" });
  const odd = (i: number) => 2 * i + 1;

  test("streams reset after dispatch past the per-second budget → GOAWAY ENHANCE_YOUR_CALM; other clients are served", async () => {
    const h2 = await openRawH2(httpsPort);
    try {
      // budget: 2 a second, 20 at once; each stream reaches the backend before it is reset (slower than h2's own
      // limit on resets of streams not yet served, which this budget is beside)
      let sent = 0;
      for (; sent < 40 && h2.goaway() === null && !h2.isClosed(); sent++) {
        const seen = backend.requests;
        h2.send(headers(odd(sent), requestFields("GET", "/slow?ms=60000", "foo.test"), true));
        await eventually("dispatched", async () => assert.ok(backend.requests > seen || h2.isClosed()));
        h2.send(rstStream(odd(sent), ERROR.CANCEL));
      }
      await h2.waitFor(() => h2.goaway() !== null, 5_000);
      assert.equal(h2.goaway()?.code, ERROR.ENHANCE_YOUR_CALM, `after ${sent} resets: GOAWAY ${JSON.stringify(h2.goaway())}`);
      // (the burst of 20, plus what the budget refilled while the streams were dispatched one by one)
      assert.ok(sent > 20 && sent < 40, `GOAWAY after ${sent} resets`);
      await Promise.race([h2.closed, sleep(5_000)]);
      assert.ok(h2.isClosed(), "the connection stayed open after GOAWAY");
    } finally {
      h2.close();
    }
    assert.equal(await wellBehaved(), 200);
    assert.ok(plane.counters().clientGone >= 20);
  });

  test("a CONTINUATION flood ends that connection; another client is served meanwhile", async () => {
    const h2 = await openRawH2(httpsPort);
    try {
      h2.send(frame(FRAME.HEADERS, 0, 1, headerBlock(requestFields("GET", "/", "foo.test"))));
      const filler = frame(FRAME.CONTINUATION, 0, 1, headerBlock([["x-flood", "a".repeat(1000)]]));
      let served = false;
      for (let i = 0; i < 20_000 && !h2.isClosed(); i++) {
        if (!h2.send(filler)) await sleep(1);
        if (i === 100) served = (await wellBehaved()) === 200; // while the flood is under way
      }
      await Promise.race([h2.closed, sleep(10_000)]);
      assert.ok(h2.isClosed() || h2.goaway() !== null, "20 MB of CONTINUATION frames did not end the connection");
      assert.ok(served || h2.isClosed(), "no other client was served during the flood");
    } finally {
      h2.close();
    }
    assert.equal(await wellBehaved(), 200);
  });
});

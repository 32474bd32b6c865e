// The upstream connect timeout, for real: an endpoint whose SYNs vanish (dropped inside a network namespace
// of the test's own, so nothing ever answers — no RST, no ICMP) makes the connect hang until the proxy's
// timeout. Idempotent requests then go to another endpoint; with none left, or with a body, the answer is 502.
// The proxy runs in this process, on the root side of the namespace's veth pair; no traffic leaves the pair.
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { createLogger } from "@bollard/core";
import { compileRoutes, createProxy, generateDefaultCertificate, type IngressProxy, type RouteTable } from "../src/index.ts";
import { snapshotOf } from "./helpers/backends.ts";
import { json, rawExchange, send, statusOf } from "./helpers/client.ts";
import { type BackendNamespace, createBackendNamespace } from "./helpers/netns.ts";

const LIVE = 8081;
const SILENT = 8082;
const SILENT_TOO = 8083;
const BOUND = { timeout: 30_000 }; // only a bound on a hung test

describe("upstream connect timeout", () => {
  let ns: BackendNamespace;
  let proxy: IngressProxy;
  let port: number;
  const logLines: { msg?: string; code?: string; err?: { code?: string }; endpoint?: { port?: number } }[] = [];

  /** One Service on the namespace's address with these ports as its endpoints. */
  const tableTo = (ports: number[]): RouteTable => {
    const snapshot = snapshotOf([{ name: "t", routes: [{ host: "t.test", service: "t", ports }] }]);
    for (const slice of snapshot.endpointSlices) for (const ep of slice.endpoints ?? []) ep.addresses = [ns.address];
    return compileRoutes(snapshot);
  };

  before(async () => {
    ns = createBackendNamespace();
    const live = await ns.startBackend("live", LIVE);
    live.stdout?.on("data", () => {});
    ns.dropConnections(SILENT);
    ns.dropConnections(SILENT_TOO);
    const lines = new PassThrough();
    lines.setEncoding("utf8");
    let partial = "";
    lines.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) if (line !== "") logLines.push(JSON.parse(line));
    });
    proxy = createProxy({ defaultCertificate: generateDefaultCertificate(), connectTimeout: 300, logger: createLogger({ name: "timeout-test", level: "debug", destination: lines }) });
    ({ httpPort: port } = await proxy.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: null }));
  });

  after(async () => {
    await proxy?.shutdown(1000);
    ns?.destroy();
  });

  const timedOut = (port: number) => logLines.filter((l) => (l.err?.code ?? l.code) === "UND_ERR_CONNECT_TIMEOUT" && l.endpoint?.port === port);

  test("a GET whose endpoint never answers the connect is served by another endpoint", BOUND, async () => {
    proxy.setTable(tableTo([SILENT, LIVE]));
    const before = timedOut(SILENT).length;
    // Round-robin starts with the silent endpoint (endpoints are sorted), so the first request meets it.
    for (let i = 0; i < 2; i++) {
      const r = await send(port, { host: "t.test", path: `/try/${i}` });
      assert.equal(r.status, 200);
      assert.equal(json<{ backend: string }>(r).backend, "live");
    }
    assert.equal(timedOut(SILENT).length - before, 1, "exactly one connect to the silent endpoint timed out and was retried");
  });

  test("every endpoint silent → 502 after trying two", BOUND, async () => {
    proxy.setTable(tableTo([SILENT, SILENT_TOO]));
    const before = timedOut(SILENT).length + timedOut(SILENT_TOO).length;
    const r = await send(port, { host: "t.test" });
    assert.equal(r.status, 502);
    assert.equal(timedOut(SILENT).length + timedOut(SILENT_TOO).length - before, 2);
  });

  test("a POST with a body is not retried: its endpoint's connect timeout is a 502", BOUND, async () => {
    proxy.setTable(tableTo([SILENT, LIVE]));
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await send(port, { host: "t.test", method: "POST", body: "x" })).status);
    assert.deepEqual(statuses.sort(), [200, 502]);
  });

  test("an Upgrade whose endpoint never answers the connect → 502", BOUND, async () => {
    proxy.setTable(tableTo([SILENT]));
    const raw = await rawExchange(port, "GET /ws HTTP/1.1\r\nHost: t.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 20_000);
    assert.equal(statusOf(raw), 502);
  });
});

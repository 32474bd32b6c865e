// The upstream connect timeout, for real: an endpoint whose SYNs vanish (dropped inside a network namespace
// of the test's own, so nothing ever answers — no RST, no ICMP) makes the connect hang until the proxy's
// timeout. Requests then go to another endpoint (nothing was sent); with none left the answer is 504, as nginx's.
// The data plane runs in this process, on the root side of the namespace's veth pair; no traffic leaves the pair.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { compileRoutes, type RouteTable } from "@bollard/ingress";
import { snapshotOf } from "../../../ingress/test/helpers/backends.ts";
import { json, rawExchange, send, statusOf } from "../../../ingress/test/helpers/client.ts";
import { type BackendNamespace, createBackendNamespace } from "../../../ingress/test/helpers/netns.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const LIVE = 8081;
const SILENT = 8082;
const SILENT_TOO = 8083;
const BOUND = { timeout: 30_000 }; // only a bound on a hung test

eachPlane("upstream connect timeout", (kind) => {
  let ns: BackendNamespace;
  let plane: RunningPlane;
  let port: number;

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
    plane = await kind.start({ connectTimeout: 300 });
    port = plane.httpPort;
  });

  after(async () => {
    await plane?.shutdown(1000);
    ns?.destroy();
  });

  test("a GET whose endpoint never answers the connect is served by another endpoint", BOUND, async () => {
    plane.setTable(tableTo([SILENT, LIVE]));
    const before = plane.retries();
    // Round-robin starts with the silent endpoint (endpoints are sorted), so the first request meets it.
    for (let i = 0; i < 2; i++) {
      const r = await send(port, { host: "t.test", path: `/try/${i}` });
      assert.equal(r.status, 200);
      assert.equal(json<{ backend: string }>(r).backend, "live");
    }
    assert.equal(plane.retries() - before, 1, "exactly one connect to the silent endpoint timed out and was retried");
  });

  test("every endpoint silent → 504 (a gateway timeout, as nginx) after trying two", BOUND, async () => {
    plane.setTable(tableTo([SILENT, SILENT_TOO]));
    const before = plane.retries();
    const r = await send(port, { host: "t.test" });
    assert.equal(r.status, 504);
    assert.equal(plane.retries() - before, 1, "the first timed out and was retried once, on the other");
  });

  test("a POST whose connect timed out was never sent: it goes to another endpoint (proxy-next-upstream's default)", BOUND, async () => {
    plane.setTable(tableTo([SILENT, LIVE]));
    const before = plane.retries();
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await send(port, { host: "t.test", method: "POST", body: "x" })).status);
    assert.deepEqual(statuses, [200, 200]);
    assert.equal(plane.retries() - before, 1, "the one that met the silent endpoint was tried again");
  });

  test("an Upgrade whose endpoint never answers the connect → 504", BOUND, async () => {
    plane.setTable(tableTo([SILENT]));
    const raw = await rawExchange(port, "GET /ws HTTP/1.1\r\nHost: t.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 20_000);
    assert.equal(statusOf(raw), 504);
  });
});

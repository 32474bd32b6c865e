// proxy-connect-timeout per route, for real: an endpoint whose SYNs vanish (dropped inside a network namespace
// of the test's own: no RST, no ICMP) makes a connect hang until a timeout. The plane's flag is long; only the
// route that asks for a short one gives up on it in time, while the same endpoint on a route without the
// annotation is still waiting.
import assert from "node:assert/strict";
import { type ClientRequest, request } from "node:http";
import { after, before, test } from "node:test";
import { compileRoutes } from "@bollard/ingress";
import { type IngressSpec, snapshotOf } from "../../../ingress/test/helpers/backends.ts";
import { json, send } from "../../../ingress/test/helpers/client.ts";
import { type BackendNamespace, createBackendNamespace } from "../../../ingress/test/helpers/netns.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";
const LIVE = 8081;
const SILENT = 8082;
const BOUND = { timeout: 30_000 }; // only a bound on a hung test
/** the flag: far longer than the test may take, so only the annotation can end a connect in time */
const FLAG_CONNECT_TIMEOUT = 120_000;

/** A request whose answer is awaited, or not: `settled` says whether it ended (answer or error) yet. */
function pending(port: number, host: string): { req: ClientRequest; settled: () => boolean } {
  let done = false;
  const req = request({ host: "127.0.0.1", port, path: "/", headers: { host }, agent: false }, (res) => {
    res.resume();
    res.on("end", () => {
      done = true;
    });
  });
  req.on("error", () => {
    done = true;
  });
  req.end();
  return { req, settled: () => done };
}

eachPlane("policy: proxy-connect-timeout", (kind) => {
  let ns: BackendNamespace;
  let plane: RunningPlane;

  before(async () => {
    ns = createBackendNamespace();
    const live = await ns.startBackend("live", LIVE);
    live.stdout?.on("data", () => {});
    ns.dropConnections(SILENT);
    plane = await kind.start({ connectTimeout: FLAG_CONNECT_TIMEOUT, readTimeout: FLAG_CONNECT_TIMEOUT });
    const route = (name: string, annotations: Record<string, string>, ports: number[]): IngressSpec => ({
      name,
      annotations: Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`${P}/${k}`, v])),
      routes: [{ host: `${name}.test`, service: `svc-${name}`, ports }],
    });
    const snapshot = snapshotOf([
      route("short", { "proxy-connect-timeout": "1" }, [SILENT]),
      route("flag", {}, [SILENT]),
      route("short-retry", { "proxy-connect-timeout": "1" }, [SILENT, LIVE]),
    ]);
    for (const slice of snapshot.endpointSlices) for (const ep of slice.endpoints ?? []) ep.addresses = [ns.address];
    plane.setTable(compileRoutes(snapshot));
  });

  after(async () => {
    await plane?.shutdown(1000);
    ns?.destroy();
  });

  test("a short proxy-connect-timeout answers 504 while the flag's long one is still connecting", BOUND, async () => {
    // the route without the annotation is asked first, with a head start: had both the same timeout, it would
    // have answered well before the other
    const waiting = pending(plane.httpPort, "flag.test");
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const r = await send(plane.httpPort, { host: "short.test" });
      assert.equal(r.status, 504, "a connect that timed out is a gateway timeout, as nginx answers it");
      assert.equal(waiting.settled(), false, "the route without proxy-connect-timeout gave up as soon: the annotation made no difference");
    } finally {
      waiting.req.destroy();
    }
  });

  test("the route's timeout ends the connect in time for another endpoint to answer", BOUND, async () => {
    const before = plane.retries();
    // round-robin starts with the silent endpoint (endpoints are sorted), so one of two requests meets it
    for (let i = 0; i < 2; i++) {
      const r = await send(plane.httpPort, { host: "short-retry.test", path: `/try/${i}` });
      assert.equal(r.status, 200);
      assert.equal(json<{ backend: string }>(r).backend, "live");
    }
    assert.equal(plane.retries() - before, 1, "one connect to the silent endpoint timed out and was retried");
  });
});

// The native plane's own counters, as JavaScript reads them at scrape time (no JavaScript per request): what
// the proxy suite (test/proxy/) does to it shows up in `counters()` and `routeCounters()`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Backend, deadPort, startBackend, tableOf } from "../../ingress/test/helpers/backends.ts";
import { send } from "../../ingress/test/helpers/client.ts";
import { createDataPlane } from "../src/index.ts";
import { defaultCertificate } from "./planes.ts";

test("requests, answers by class, retries, upstream timeouts, connections and swaps are counted", async () => {
  const backends: Backend[] = [await startBackend("a"), await startBackend("silent", () => true)];
  const [a, silent] = backends as [Backend, Backend];
  const dead = await deadPort();
  const plane = createDataPlane({ defaultCertificate, readTimeout: 300 });
  const { httpPort: port } = plane.listen({ host: "127.0.0.1", httpPort: 0, workers: 2 });
  try {
    plane.setTable(
      tableOf([
        {
          name: "web",
          routes: [
            { host: "c.test", path: "/", service: "a", ports: [dead, a.port] },
            { host: "c.test", path: "/silent", service: "silent", ports: [silent.port] },
            { host: "c.test", path: "/empty", service: "empty", ports: [] },
          ],
        },
      ]),
    );
    for (let i = 0; i < 4; i++) assert.equal((await send(port, { host: "c.test" })).status, 200);
    assert.equal((await send(port, { host: "c.test", path: "/a%zz" })).status, 400);
    assert.equal((await send(port, { host: "nowhere.test" })).status, 404);
    assert.equal((await send(port, { host: "c.test", path: "/empty" })).status, 503);
    assert.equal((await send(port, { host: "c.test", path: "/silent" })).status, 504);
    const c = plane.counters();
    assert.equal(c.requests, 8);
    assert.equal(c.responses2xx, 4);
    assert.equal(c.responses4xx, 2);
    assert.equal(c.responses5xx, 2);
    assert.equal(c.localResponses, 4);
    // each request that met the refusing endpoint was retried (how many met it depends on how round-robin and
    // retries interleave: 2 to 4 of the 4)
    assert.ok(c.upstreamRetries >= 2 && c.upstreamRetries <= 4, String(c.upstreamRetries));
    assert.equal(c.upstreamTimeouts, 1);
    assert.equal(c.connectionsOpened, 8);
    assert.equal(c.tableSwaps, 1);
    const web = plane.routeCounters().find((r) => r.ingress === "default/web" && r.service === "a");
    assert.deepEqual(web?.responses, [0, 4, 0, 0, 0]);
  } finally {
    await plane.shutdown(1000);
    for (const b of backends) await b.close();
  }
});

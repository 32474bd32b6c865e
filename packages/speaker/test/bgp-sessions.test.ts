// BgpSessions against passive BgpSessions listening on loopback (real TCP, the addon's sockets with TTL 1): it
// opens one session per desired peer, feeds routes, replaces a session whose options change and stops one
// whose peer goes; routesForNode merges the announcement rules' output per peer.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:net";
import { after, describe, it } from "node:test";
import { BgpSession } from "@bollard/bgp";
import type { PeerSession } from "../src/bgp/peers.ts";
import { BgpSessions, routesForNode } from "../src/bgp/sessions.ts";

const until = async (what: string, check: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

async function router(asn: number): Promise<{ session: BgpSession; server: Server; port: number }> {
  const session = new BgpSession({ peerAddress: "127.0.0.1", localAsn: asn, peerAsn: "external", routerId: `10.0.0.${asn % 200}`, passive: true });
  const server = createServer((s) => session.accept(s));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  session.start();
  return { session, server, port: (server.address() as { port: number }).port };
}

const peerSession = (port: number, holdTime = 90): PeerSession => ({
  options: { peerAddress: "127.0.0.1", peerPort: port, localAsn: 64500, peerAsn: "external", routerId: "10.0.0.2", holdTime, connectRetrySeconds: 1, families: [{ afi: 1, safi: 1 }] },
  ttl: 1,
});

describe("BgpSessions", () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it("opens, updates, replaces and stops sessions as the desired state says", async () => {
    const a = await router(64501);
    const b = await router(64502);
    cleanup.push(() => a.server.close(), () => b.server.close(), () => a.session.stop(), () => b.session.stop());
    const sessions = new BgpSessions();
    cleanup.push(() => sessions.stop());
    await sessions.update(
      new Map([
        ["a", { session: peerSession(a.port), routes: [{ prefix: "192.168.1.1/32" }] }],
        ["b", { session: peerSession(b.port), routes: [{ prefix: "192.168.1.2/32", communities: [1] }] }],
      ]),
    );
    await until("both routers hold their route", () => a.session.received.has("192.168.1.1/32") && b.session.received.has("192.168.1.2/32"));
    assert.deepEqual(b.session.received.get("192.168.1.2/32")?.communities, [1]);

    // New routes for a; b's options change (hold time) → b is replaced; then b goes.
    await sessions.update(
      new Map([
        ["a", { session: peerSession(a.port), routes: [{ prefix: "192.168.1.3/32" }] }],
        ["b", { session: peerSession(b.port, 30), routes: [{ prefix: "192.168.1.2/32" }] }],
      ]),
    );
    await until("a's routes replaced", () => a.session.received.has("192.168.1.3/32") && !a.session.received.has("192.168.1.1/32"));
    await until("b re-established with the new hold time", () => b.session.state === "Established" && b.session.agreed?.holdTime === 30);
    await sessions.update(new Map([["a", { session: peerSession(a.port), routes: [{ prefix: "192.168.1.3/32" }] }]]));
    await until("b's session gone", () => b.session.state !== "Established");
    assert.equal(sessions.state("b"), undefined);
    assert.equal(sessions.state("a"), "Established");
  });
});

describe("routesForNode", () => {
  it("merges announcements of one prefix to one peer, per node", () => {
    const base = { namespace: "default", name: "web", ip: "192.168.1.5", prefix: "192.168.1.0/24", largeCommunities: [], advertisements: ["x"] };
    const routes = routesForNode(
      [
        { ...base, node: "node1", peer: "tor", communities: [2], localPref: 100 },
        { ...base, ip: "192.168.1.6", node: "node1", peer: "tor", communities: [1], localPref: 200 },
        { ...base, node: "node1", peer: "core", communities: [] },
        { ...base, node: "node2", peer: "tor", communities: [9] },
      ],
      "node1",
    );
    assert.deepEqual(Object.fromEntries(routes), {
      tor: [{ prefix: "192.168.1.0/24", communities: [1, 2], localPref: 200 }],
      core: [{ prefix: "192.168.1.0/24" }],
    });
  });
});

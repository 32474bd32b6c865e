// Two sessions of our own over real TCP on the loopback interface, and a hand-driven raw peer for what a
// well-behaved speaker never sends. What other implementations make of us is in interop.netns.test.ts.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { after, describe, it } from "node:test";
import { BgpSession, decodeMessage, encodeMessage, FrameReader, type Message, type SessionState } from "@bollard/bgp";

const until = async (what: string, check: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** A passive session behind a listening socket on 127.0.0.1, as a router would run one. */
async function listeningPeer(session: BgpSession): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => session.accept(socket));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as { port: number }).port };
}

describe("BgpSession over loopback", () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it("reaches Established, exchanges IPv4 and IPv6 routes with their attributes, withdraws, and stops with Cease", async () => {
    const router = new BgpSession({ peerAddress: "127.0.0.1", localAsn: 64501, peerAsn: "external", routerId: "10.0.0.1", passive: true, holdTime: 30 });
    const { server, port } = await listeningPeer(router);
    cleanup.push(() => server.close());
    router.start();
    const speaker = new BgpSession({ peerAddress: "127.0.0.1", peerPort: port, localAsn: 64500, peerAsn: 64501, routerId: "10.0.0.2", holdTime: 9, connectRetrySeconds: 1 });
    const states: SessionState[] = [];
    speaker.on("state", ({ to }) => states.push(to));
    speaker.setRoutes([
      { prefix: "192.168.10.1/32", communities: [0xffffff02], largeCommunities: [[64500, 1, 2]] },
      { prefix: "fd00:1::1/128", nextHop: "fd00::2" },
      { prefix: "192.168.10.2/32", localPref: 50 },
    ]);
    speaker.start();
    cleanup.push(() => speaker.stop());
    await until("Established", () => speaker.state === "Established" && router.state === "Established");
    assert.deepEqual(states, ["Connect", "OpenSent", "OpenConfirm", "Established"]);
    assert.deepEqual(speaker.agreed?.holdTime, 9, "the smaller hold time wins");
    assert.equal(speaker.agreed?.keepaliveTime, 3);
    assert.equal(speaker.agreed?.fourOctetAs, true);
    assert.deepEqual(speaker.agreed?.families, [{ afi: 1, safi: 1 }, { afi: 2, safi: 1 }]);

    await until("three routes", () => router.received.size === 3);
    const v4 = router.received.get("192.168.10.1/32");
    assert.equal(v4?.nextHop, "127.0.0.1", "the default next hop is the session's own address");
    assert.deepEqual(v4?.asPath, [{ type: "sequence", asns: [64500] }]);
    assert.deepEqual(v4?.communities, [0xffffff02]);
    assert.deepEqual(v4?.largeCommunities, [[64500, 1, 2]]);
    assert.equal(v4?.localPref, undefined, "no LOCAL_PREF to an external peer");
    assert.deepEqual(router.received.get("fd00:1::1/128")?.mpReach?.nextHops, ["fd00::2"]);

    speaker.setRoutes([{ prefix: "192.168.10.1/32", communities: [0xffffff02], largeCommunities: [[64500, 1, 2]] }]);
    await until("withdrawals", () => router.received.size === 1);

    const notified = once(router, "notification");
    await speaker.stop();
    const [notification] = await notified;
    assert.deepEqual({ code: notification.code, subcode: notification.subcode, direction: notification.direction }, { code: 6, subcode: 2, direction: "received" });
    await until("router back in Active", () => router.state === "Active");
    assert.equal(router.received.size, 0, "a peer's routes go with its session");
    await router.stop();
  });

  it("abandon() closes without a NOTIFICATION (graceful restart): the peer sees the connection end, no Cease", async () => {
    const router = new BgpSession({ peerAddress: "127.0.0.1", localAsn: 64501, peerAsn: "external", routerId: "10.0.0.1", passive: true });
    const { server, port } = await listeningPeer(router);
    cleanup.push(() => server.close());
    router.start();
    cleanup.push(() => router.stop());
    const speaker = new BgpSession({ peerAddress: "127.0.0.1", peerPort: port, localAsn: 64500, peerAsn: 64501, routerId: "10.0.0.2", gracefulRestart: { restartTime: 120, restarting: true } });
    const sent: number[] = [];
    speaker.on("sent", ({ updates }) => sent.push(updates));
    speaker.setRoutes([{ prefix: "192.168.10.1/32" }]);
    speaker.start();
    await until("Established", () => speaker.state === "Established" && router.received.size === 1);
    assert.equal(speaker.advertisedCount, 1);
    assert.equal(speaker.pendingCount, 0);
    assert.ok(sent.reduce((a, b) => a + b, 0) >= 3, `the route and an End-of-RIB per family were counted: ${sent}`);
    const notifications: unknown[] = [];
    router.on("notification", (n) => notifications.push(n));
    const downs: unknown[] = [];
    speaker.on("down", (d) => downs.push(d));
    await speaker.abandon();
    assert.equal(speaker.state, "Idle");
    assert.equal(downs.length, 1);
    await until("the router to notice", () => router.state !== "Established");
    assert.deepEqual(notifications, [], "no NOTIFICATION either way");
    assert.equal(speaker.pendingCount, 1, "the table is pending again");
  });

  it("takes prefixes in canonical form and reports the ones that are not prefixes", () => {
    const session = new BgpSession({ peerAddress: "127.0.0.1", localAsn: 64500, peerAsn: 64501, routerId: "10.0.0.2" });
    const skipped: { prefix: string; reason: string }[][] = [];
    session.on("skipped", (s) => skipped.push(s));
    session.setRoutes([{ prefix: "10.0.0.1/33" }, { prefix: "fd00:0:0::1/128" }, { prefix: "router" }]);
    assert.deepEqual(skipped.flat().map((s) => s.prefix), ["10.0.0.1/33", "router"]);
  });

  it("sends LOCAL_PREF (default 100) to an internal peer", async () => {
    const router = new BgpSession({ peerAddress: "127.0.0.1", localAsn: 64500, peerAsn: "internal", routerId: "10.0.0.1", passive: true });
    const { server, port } = await listeningPeer(router);
    cleanup.push(() => server.close());
    router.start();
    const speaker = new BgpSession({ peerAddress: "127.0.0.1", peerPort: port, localAsn: 64500, peerAsn: 64500, routerId: "10.0.0.2", families: [{ afi: 1, safi: 1 }] });
    speaker.setRoutes([{ prefix: "10.1.0.1/32" }, { prefix: "10.1.0.2/32", localPref: 300 }]);
    speaker.start();
    await until("two routes", () => router.received.size === 2);
    assert.equal(router.received.get("10.1.0.1/32")?.localPref, 100);
    assert.equal(router.received.get("10.1.0.2/32")?.localPref, 300);
    assert.deepEqual(router.received.get("10.1.0.1/32")?.asPath, [], "iBGP: our AS is not prepended");
    await speaker.stop();
    await router.stop();
  });

  /** A raw peer: accepts one connection, sends what the test says, records what it receives. */
  async function rawPeer(): Promise<{ port: number; socket: Promise<Socket>; received: Message[]; server: Server }> {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    cleanup.push(() => server.close());
    const received: Message[] = [];
    const socket = new Promise<Socket>((resolve) =>
      server.once("connection", (s: Socket) => {
        const reader = new FrameReader();
        s.on("data", (chunk) => {
          for (const f of reader.push(chunk)) received.push(decodeMessage(f, { fourOctetAs: true, external: true }));
        });
        s.on("error", () => {});
        resolve(s);
      }),
    );
    return { port: (server.address() as { port: number }).port, socket, received, server };
  }
  const ctx = { fourOctetAs: true, external: true };
  const peerOpen = (holdTime: number): Message => ({ type: "open", myAs: 64501, holdTime, routerId: "10.0.0.1", capabilities: [{ kind: "four-octet-as", asn: 64501 }] });

  it("answers a malformed UPDATE that needs a reset with its NOTIFICATION, then backs off and reconnects", async () => {
    const peer = await rawPeer();
    const speaker = new BgpSession({ peerAddress: "127.0.0.1", peerPort: peer.port, localAsn: 64500, peerAsn: 64501, routerId: "10.0.0.2", connectRetrySeconds: 1 });
    speaker.start();
    cleanup.push(() => speaker.stop());
    const socket = await peer.socket;
    socket.write(encodeMessage(peerOpen(90), ctx));
    socket.write(encodeMessage({ type: "keepalive" }, ctx));
    await until("Established", () => speaker.state === "Established");
    const reconnected = once(peer.server, "connection");
    // An unrecognized well-known attribute (flags 0x40, type 99): RFC 7606 keeps the session reset for it.
    socket.write(Buffer.from("ffffffffffffffffffffffffffffffff001b020000000440630100", "hex"));
    await until("the NOTIFICATION", () => peer.received.some((m) => m.type === "notification"));
    const notification = peer.received.find((m) => m.type === "notification");
    assert.deepEqual(notification && { code: notification.code, subcode: notification.subcode }, { code: 3, subcode: 2 });
    assert.equal(speaker.state === "Idle" || speaker.state === "Connect", true);
    const [again] = (await reconnected) as [Socket];
    again.destroy();
    await speaker.stop();
  });

  it("treats a malformed COMMUNITIES as withdraw and keeps the session", async () => {
    const peer = await rawPeer();
    const speaker = new BgpSession({ peerAddress: "127.0.0.1", peerPort: peer.port, localAsn: 64500, peerAsn: 64501, routerId: "10.0.0.2" });
    speaker.start();
    cleanup.push(() => speaker.stop());
    const socket = await peer.socket;
    socket.write(encodeMessage(peerOpen(90), ctx));
    socket.write(encodeMessage({ type: "keepalive" }, ctx));
    await until("Established", () => speaker.state === "Established");
    const route = (communities: string) => {
      const attributes = Buffer.from(`40010100 4002060201 0000fbf5 4003040a000001 ${communities}`.replace(/ /g, ""), "hex");
      const body = Buffer.concat([Buffer.from([0, 0, attributes.length >> 8, attributes.length & 0xff]), attributes, Buffer.from("20c0a80a01", "hex")]);
      return Buffer.concat([Buffer.alloc(16, 0xff), Buffer.from([(19 + body.length) >> 8, (19 + body.length) & 0xff, 2]), body]);
    };
    socket.write(route("c00804ffffff02"));
    await until("the route", () => speaker.received.has("192.168.10.1/32"));
    socket.write(route("c00805ffffff0200"));
    await until("the withdrawal", () => !speaker.received.has("192.168.10.1/32"));
    assert.equal(speaker.state, "Established");
    await speaker.stop();
  });

  it("sends Hold Timer Expired when the peer goes silent", async () => {
    const peer = await rawPeer();
    const speaker = new BgpSession({ peerAddress: "127.0.0.1", peerPort: peer.port, localAsn: 64500, peerAsn: 64501, routerId: "10.0.0.2", holdTime: 3 });
    speaker.start();
    cleanup.push(() => speaker.stop());
    const socket = await peer.socket;
    socket.write(encodeMessage(peerOpen(3), ctx));
    socket.write(encodeMessage({ type: "keepalive" }, ctx));
    await until("Established", () => speaker.state === "Established");
    await until("Hold Timer Expired", () => peer.received.some((m) => m.type === "notification" && m.code === 4), 8_000);
    assert.ok(peer.received.filter((m) => m.type === "keepalive").length >= 2, "we kept sending keepalives every second");
    await speaker.stop();
  });

  it("refuses a peer in the wrong AS with Bad Peer AS", async () => {
    const peer = await rawPeer();
    const speaker = new BgpSession({ peerAddress: "127.0.0.1", peerPort: peer.port, localAsn: 64500, peerAsn: 65000, routerId: "10.0.0.2" });
    speaker.start();
    cleanup.push(() => speaker.stop());
    (await peer.socket).write(encodeMessage(peerOpen(90), ctx));
    await until("the NOTIFICATION", () => peer.received.some((m) => m.type === "notification"));
    const n = peer.received.find((m) => m.type === "notification");
    assert.deepEqual(n && [n.code, n.subcode], [2, 2]);
    await speaker.stop();
  });
});

// BfdThreadSession over loopback UDP: two sessions, each on its own worker thread, come Up with each other and
// stay Up while this thread's event loop is blocked for longer than their detection time; a stop is seen by the
// other as AdminDown; a start that cannot bind rejects with the reason, and stopping it then returns.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BfdThreadSession } from "@bollard/bgp";

const PORT = 40000 + Math.floor(Math.random() * 9000);
const timers = { desiredMinTxMs: 50, requiredMinRxMs: 50, detectMultiplier: 3, passive: false, port: PORT };
const until = async (what: string, check: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe("BfdThreadSession", () => {
  it("comes Up over loopback, stays Up through 1 s of this thread blocked, and a stop is seen as AdminDown", async () => {
    const a = new BfdThreadSession({ ...timers, localAddress: "127.0.0.1", peerAddress: "127.0.0.2" });
    const b = new BfdThreadSession({ ...timers, localAddress: "127.0.0.2", peerAddress: "127.0.0.1" });
    const seenByB: string[] = [];
    b.on("state", ({ to }) => seenByB.push(to));
    try {
      await Promise.all([a.start(), b.start()]);
      await until("both Up", () => a.sessionState === "Up" && b.sessionState === "Up");
      const mark = seenByB.length;
      // 1 s is over 6 × the 150 ms detection time: sessions on this thread would both have gone Down.
      const end = Date.now() + 1000;
      while (Date.now() < end);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(seenByB.slice(mark), [], "no state change while this thread was blocked");
      await a.stop();
      await until("b to hear AdminDown", () => b.sessionState === "Down");
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it("rejects a start that cannot bind, and stopping it then returns", async () => {
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: bind fails, nothing is sent.
    const s = new BfdThreadSession({ ...timers, localAddress: "192.0.2.1", peerAddress: "192.0.2.2" });
    await assert.rejects(s.start(), /EADDRNOTAVAIL|address/i);
    await s.stop();
  });
});

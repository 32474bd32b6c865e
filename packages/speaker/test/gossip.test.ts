// The membership protocol core: its rules one by one (tables, hand-fed messages and a virtual clock),
// then whole clusters of cores over a simulated network (seeded loss, a dead member, a partition).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  adoptIncarnation,
  createGossip,
  DEFAULT_GOSSIP_TIMING,
  type GossipConfig,
  type GossipState,
  leave,
  liveMembers,
  type Message,
  nextDeadline,
  type Outgoing,
  pendingUpdates,
  probeRefused,
  receive,
  retransmitLimit,
  setPeers,
  suspicionTimeout,
  tick,
  type Update,
} from "../src/membership/gossip.ts";
import { seededRandom } from "@bollard/core";
import { VirtualCluster } from "./helpers/virtual-cluster.ts";


const config = (overrides: Partial<GossipConfig> = {}): GossipConfig => ({
  ...DEFAULT_GOSSIP_TIMING,
  maxPiggybackBytes: 1000,
  updateSize: (u) => 16 + u.node.length + ("from" in u ? u.from.length : 0),
  random: seededRandom(1),
  stallMs: Number.POSITIVE_INFINITY,
  ...overrides,
});

const alive = (node: string, incarnation: number, ready = true): Update => ({ kind: "alive", node, incarnation, ready });

/** How long a member waits for the suspect's answer when it checks hearsay before counting the suspect dead. */
const CHECK_MS = DEFAULT_GOSSIP_TIMING.probeTimeoutMs;

/**
 * A member `self` among `peers`, past its join, knowing every peer alive and ready at incarnation 1, with
 * nothing in flight. Ticks are hand-fed far apart, so stall detection is off unless a test sets it.
 */
function member(self: string, peers: string[], overrides: Partial<GossipConfig> = {}): GossipState {
  const state = createGossip(config({ joinGraceMs: 0, stallMs: Number.POSITIVE_INFINITY, ...overrides }), self, 100, 0);
  setPeers(state, [self, ...peers], 0);
  receive(state, peers[0] as string, { type: "state", updates: peers.map((p) => alive(p, 1)) }, 0);
  assert.equal(state.converged, true);
  state.queue.clear();
  state.fresh.clear();
  state.probe = undefined;
  state.relays.clear();
  state.nextProbeAt = 0;
  state.nextReconnectAt = Number.POSITIVE_INFINITY;
  state.lastTickAt = undefined;
  return state;
}

const sentTo = (out: Outgoing[], type: Message["type"]) => out.filter((o) => o.message.type === type).map((o) => o.to);

describe("gossip rules", () => {
  it("answers a ping addressed to it with an ack of the same sequence number carrying its own record first", () => {
    const a = member("a", ["b", "c"]);
    const { send } = receive(a, "b", { type: "ping", seq: 42, target: "a", updates: [] }, 10);
    const ack = send.find((o) => o.message.type === "ack") as Outgoing;
    assert.deepEqual(ack.to, "b");
    assert.equal((ack.message as { seq: number }).seq, 42);
    assert.deepEqual(ack.message.updates[0], alive("a", a.incarnation));
    assert.deepEqual(sentTo(receive(a, "b", { type: "ping", seq: 43, target: "someone-else", updates: [] }, 11).send, "ack"), [], "no ack for another target");
  });

  it("ignores messages from names outside the cluster", () => {
    const a = member("a", ["b"]);
    assert.deepEqual(receive(a, "intruder", { type: "ping", seq: 1, target: "a", updates: [alive("b", 9)] }, 10).send, []);
    assert.equal(a.members.get("b")?.incarnation, 1);
  });

  it("probes each member once per round, and an ack ends the probe with better local health", () => {
    const a = member("a", ["b", "c", "d"]);
    a.localHealth = 2;
    const probed: string[] = [];
    let now = 0;
    for (let round = 0; round < 3; round++) {
      now = Math.max(now, a.nextProbeAt);
      const ping = tick(a, now).send.find((o) => o.message.type === "ping");
      assert.ok(ping, `a probe in round ${round}`);
      probed.push(ping.to);
      receive(a, ping.to, { type: "ack", seq: (ping.message as { seq: number }).seq, updates: [] }, now + 1);
      assert.equal(a.probe, undefined);
      now += 1;
    }
    assert.deepEqual(probed.sort(), ["b", "c", "d"]);
    assert.equal(a.localHealth, 0);
  });

  it("without an ack asks k members to probe, then suspects the target at the end of the period and tells it", () => {
    const a = member("a", ["b", "c", "d", "e", "f"], { indirectProbes: 3 });
    const ping = tick(a, 0).send.find((o) => o.message.type === "ping") as Outgoing;
    const target = ping.to;
    assert.deepEqual(tick(a, DEFAULT_GOSSIP_TIMING.probeTimeoutMs - 1).send.filter((o) => o.message.type === "ping-req"), []);
    const atTimeout = tick(a, DEFAULT_GOSSIP_TIMING.probeTimeoutMs).send;
    const requests = atTimeout.filter((o) => o.message.type === "ping-req");
    assert.equal(requests.length, 3);
    assert.deepEqual(sentTo(atTimeout, "ping"), [target], "and the target is pinged once more");
    assert.ok(requests.every((r) => r.to !== target && (r.message as { target: string }).target === target));
    // Two helpers answer nack (they could not reach the target either), one says nothing.
    for (const r of requests.slice(0, 2)) receive(a, r.to, { type: "nack", seq: (ping.message as { seq: number }).seq, updates: [] }, 100);
    const end = tick(a, DEFAULT_GOSSIP_TIMING.probeIntervalMs);
    assert.equal(a.members.get(target)?.status, "suspect");
    assert.deepEqual(end.notes.filter((n) => n.kind === "suspect").map((n) => (n as { node: string }).node), [target]);
    const buddy = end.send.find((o) => o.to === target && o.message.type === "ping");
    assert.ok(buddy, "the suspect is pinged at once");
    assert.deepEqual(buddy.message.updates[0], { kind: "suspect", node: target, incarnation: 1, from: "a", witnesses: 2 }, "with the suspicion first, the nacking helpers as its witnesses");
    assert.equal(a.localHealth, 1, "a helper sent neither ack nor nack: local health worsens by one");
  });

  it("an unanswered probe every helper nacked still waits for the end of the period (a late ack may come)", () => {
    const a = member("a", ["b", "c", "d", "e", "f"], { indirectProbes: 3 });
    const ping = tick(a, 0).send.find((o) => o.message.type === "ping") as Outgoing;
    const seq = (ping.message as { seq: number }).seq;
    const requests = tick(a, DEFAULT_GOSSIP_TIMING.probeTimeoutMs).send.filter((o) => o.message.type === "ping-req");
    assert.equal(requests.length, 3);
    for (const r of requests) receive(a, r.to, { type: "nack", seq, updates: [] }, 161);
    assert.equal(a.members.get(ping.to)?.status, "alive");
    receive(a, ping.to, { type: "ack", seq, updates: [] }, 190);
    tick(a, DEFAULT_GOSSIP_TIMING.probeIntervalMs);
    assert.equal(a.members.get(ping.to)?.status, "alive", "the ack at 190 ms ended the probe");
  });

  it("asks the helpers at once when the target's port refused the ping, and suspects it when they all nack", () => {
    const a = member("a", ["b", "c", "d", "e", "f"], { indirectProbes: 3 });
    const ping = tick(a, 0).send.find((o) => o.message.type === "ping") as Outgoing;
    const seq = (ping.message as { seq: number }).seq;
    probeRefused(a, 1);
    const asked = tick(a, 1).send;
    const requests = asked.filter((o) => o.message.type === "ping-req");
    assert.equal(requests.length, 3, "the indirect probe, 79 ms before the timeout");
    assert.deepEqual(sentTo(asked, "ping"), [ping.to], "and the target once more");
    for (const r of requests.slice(0, 2)) receive(a, r.to, { type: "nack", seq, updates: [] }, 82);
    assert.equal(a.members.get(ping.to)?.status, "alive", "two of three nacks: the third helper may still pass an ack back");
    const last = receive(a, requests[2]?.to as string, { type: "nack", seq, updates: [] }, 83);
    assert.equal(a.members.get(ping.to)?.status, "suspect", "at 83 ms, not at the end of the period (200 ms)");
    assert.deepEqual(last.notes.filter((n) => n.kind === "suspect").map((n) => (n as { node: string }).node), [ping.to]);
    const buddy = last.send.find((o) => o.to === ping.to && o.message.type === "ping");
    assert.deepEqual(buddy?.message.updates[0], { kind: "suspect", node: ping.to, incarnation: 1, from: "a", witnesses: 3, ageMs: 0 }, "aged: counted from now wherever it is heard");
    assert.equal(a.localHealth, 0, "every helper answered: this member is not the one not hearing");
  });

  it("a refusal (which anyone can forge) does not make a member that acks suspect", () => {
    const a = member("a", ["b", "c", "d", "e", "f"], { indirectProbes: 3 });
    const ping = tick(a, 0).send.find((o) => o.message.type === "ping") as Outgoing;
    const seq = (ping.message as { seq: number }).seq;
    probeRefused(a, 1);
    const requests = tick(a, 1).send.filter((o) => o.message.type === "ping-req");
    receive(a, requests[0]?.to as string, { type: "nack", seq, updates: [] }, 82);
    receive(a, requests[1]?.to as string, { type: "ack", seq, updates: [] }, 83);
    tick(a, DEFAULT_GOSSIP_TIMING.probeIntervalMs);
    assert.equal(a.members.get(ping.to)?.status, "alive");
    assert.notEqual(a.probe?.seq, seq, "the probe ended");
    // Nor does a refusal after the indirect probe went out change anything.
    const next = tick(a, a.nextProbeAt).send.find((o) => o.message.type === "ping") as Outgoing;
    const timeoutAt = a.probe?.timeoutAt;
    tick(a, (timeoutAt as number) + 1);
    probeRefused(a, (timeoutAt as number) + 2);
    assert.equal(a.probe?.timeoutAt, timeoutAt);
    assert.ok(next);
  });

  it("pings the target once more directly at half the timeout; an ack then ends the probe without asking anybody", () => {
    const a = member("a", ["b", "c", "d", "e", "f"], { indirectProbes: 3 });
    const ping = tick(a, 0).send.find((o) => o.message.type === "ping") as Outgoing;
    const seq = (ping.message as { seq: number }).seq;
    assert.deepEqual(sentTo(tick(a, DEFAULT_GOSSIP_TIMING.probeTimeoutMs / 2 - 1).send, "ping"), []);
    const retry = tick(a, DEFAULT_GOSSIP_TIMING.probeTimeoutMs / 2).send;
    assert.deepEqual(
      retry.map((o) => [o.to, o.message.type, (o.message as { seq?: number }).seq]),
      [[ping.to, "ping", seq]],
      "the same probe (same seq), to the target only",
    );
    receive(a, ping.to, { type: "ack", seq, updates: [] }, DEFAULT_GOSSIP_TIMING.probeTimeoutMs / 2 + 1);
    assert.equal(a.probe, undefined);
    const later = tick(a, DEFAULT_GOSSIP_TIMING.probeTimeoutMs).send;
    assert.deepEqual(later.filter((o) => o.message.type === "ping-req"), []);
    assert.equal(a.localHealth, 0);
  });

  it("an indirect ack ends the probe", () => {
    const a = member("a", ["b", "c"], { indirectProbes: 1 });
    const ping = tick(a, 0).send.find((o) => o.message.type === "ping") as Outgoing;
    const [request] = tick(a, DEFAULT_GOSSIP_TIMING.probeTimeoutMs).send.filter((o) => o.message.type === "ping-req");
    receive(a, request?.to as string, { type: "ack", seq: (ping.message as { seq: number }).seq, updates: [] }, 120);
    tick(a, DEFAULT_GOSSIP_TIMING.probeIntervalMs);
    assert.equal(a.members.get(ping.to)?.status, "alive");
  });

  it("relays a ping request: pings the target, passes its ack back, or a nack when none comes", () => {
    const b = member("b", ["a", "c"]);
    const relayed = receive(b, "a", { type: "ping-req", seq: 7, target: "c", updates: [] }, 0).send.find((o) => o.message.type === "ping") as Outgoing;
    assert.equal(relayed.to, "c");
    const back = receive(b, "c", { type: "ack", seq: (relayed.message as { seq: number }).seq, updates: [] }, 5).send;
    assert.deepEqual(back.filter((o) => o.message.type === "ack").map((o) => [o.to, (o.message as { seq: number }).seq]), [["a", 7]]);

    receive(b, "a", { type: "ping-req", seq: 8, target: "c", updates: [] }, 10);
    const nack = tick(b, 10 + DEFAULT_GOSSIP_TIMING.probeTimeoutMs).send.filter((o) => o.message.type === "nack");
    assert.deepEqual(nack.map((o) => [o.to, (o.message as { seq: number }).seq]), [["a", 8]]);
  });

  // [record held, update received, status and incarnation after]
  const precedence: Array<[string, Update | undefined, Update, string]> = [
    ["alive(1) ← alive(2)", alive("b", 1), alive("b", 2), "alive 2"],
    ["alive(2) ← alive(1): older", alive("b", 2), alive("b", 1), "alive 2"],
    ["alive(1) ← suspect(1)", alive("b", 1), { kind: "suspect", node: "b", incarnation: 1, from: "c" }, "suspect 1"],
    ["alive(2) ← suspect(1): refuted already", alive("b", 2), { kind: "suspect", node: "b", incarnation: 1, from: "c" }, "alive 2"],
    ["suspect(1) ← alive(1): needs a higher incarnation", { kind: "suspect", node: "b", incarnation: 1, from: "c" }, alive("b", 1), "suspect 1"],
    ["suspect(1) ← alive(2): refutation", { kind: "suspect", node: "b", incarnation: 1, from: "c" }, alive("b", 2), "alive 2"],
    ["alive(1) ← dead(1): another's verdict on a member not even suspected here", alive("b", 1), { kind: "dead", node: "b", incarnation: 1, from: "c" }, "suspect 1"],
    ["suspect(1) ← dead(1) from another, before the suspicion's minimum: a confirmation", { kind: "suspect", node: "b", incarnation: 1, from: "c" }, { kind: "dead", node: "b", incarnation: 1, from: "c" }, "suspect 1"],
    ["suspect(1) ← dead(2) from another: newer", { kind: "suspect", node: "b", incarnation: 1, from: "c" }, { kind: "dead", node: "b", incarnation: 2, from: "c" }, "dead 2"],
    ["dead(1) ← alive(1)", { kind: "dead", node: "b", incarnation: 1, from: "c" }, alive("b", 1), "dead 1"],
    ["dead(1) ← alive(2): back", { kind: "dead", node: "b", incarnation: 1, from: "c" }, alive("b", 2), "alive 2"],
    ["dead(1) ← suspect(2)", { kind: "dead", node: "b", incarnation: 1, from: "c" }, { kind: "suspect", node: "b", incarnation: 2, from: "c" }, "dead 1"],
    ["alive(1) ← dead(1) from itself: left", alive("b", 1), { kind: "dead", node: "b", incarnation: 1, from: "b" }, "left 1"],
    ["unknown ← suspect(1)", undefined, { kind: "suspect", node: "b", incarnation: 1, from: "c" }, "unknown"],
    ["unknown ← dead(3)", undefined, { kind: "dead", node: "b", incarnation: 3, from: "c" }, "dead 3"],
    ["unknown ← alive(3)", undefined, alive("b", 3), "alive 3"],
  ];
  for (const [what, held, update, expected] of precedence) {
    it(`precedence ${what} → ${expected}`, () => {
      const a = createGossip(config(), "a", 100, 0);
      setPeers(a, ["a", "b", "c"], 0);
      receive(a, "c", { type: "state", updates: [alive("c", 1)] }, 0);
      if (held?.kind === "suspect") receive(a, "c", { type: "state", updates: [alive("b", held.incarnation), held] }, 0);
      else if (held !== undefined) receive(a, "c", { type: "state", updates: [held] }, 0);
      receive(a, "c", { type: "gossip", updates: [update] }, 1);
      const m = a.members.get("b");
      assert.equal(m === undefined ? "unknown" : `${m.status} ${m.incarnation}`, expected);
    });
  }

  it("takes another member's death verdict on a member it had not suspected for a suspicion, and tells the member", () => {
    // After a partition heals, the other side's "dead" can arrive before the refutation: no flap.
    const a = member("a", ["b", "c"]);
    const { send } = receive(a, "c", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "c" }] }, 10);
    assert.equal(a.members.get("b")?.status, "suspect");
    assert.ok(liveMembers(a).has("b"), "a suspect still counts");
    const buddy = send.find((o) => o.to === "b" && o.message.type === "ping") as Outgoing;
    assert.deepEqual(buddy.message.updates[0], { kind: "suspect", node: "b", incarnation: 1, from: "a" });
    receive(a, "b", { type: "ack", seq: (buddy.message as { seq: number }).seq, updates: [alive("b", 2)] }, 11);
    assert.equal(a.members.get("b")?.status, "alive");
  });

  it("ignores verdicts from a member it suspects (a member stalled through a partition suspects the other side still)", () => {
    const a = member("a", ["b", "c", "d"]);
    a.nextProbeAt = Number.POSITIVE_INFINITY;
    receive(a, "d", { type: "gossip", updates: [{ kind: "suspect", node: "c", incarnation: 1, from: "d" }] }, 1);
    assert.equal(a.members.get("c")?.status, "suspect");
    for (const [i, kind] of (["dead", "suspect"] as const).entries()) {
      receive(a, "c", { type: "gossip", updates: [{ kind, node: "b", incarnation: 1, from: "c" }] }, 2 + i);
      assert.equal(a.members.get("b")?.status, "alive", `a ${kind} verdict from a suspected member changes nothing`);
    }
    receive(a, "d", { type: "gossip", updates: [{ kind: "suspect", node: "b", incarnation: 1, from: "d" }] }, 4);
    assert.equal(a.members.get("b")?.status, "suspect", "one from a member it counts alive does");
  });

  it("ignores verdicts from a member it counts dead, or counted dead until less than staleVerdictMs ago (a healed partition's other side)", () => {
    const a = member("a", ["b", "c", "d"], { staleVerdictMs: 50 });
    a.nextProbeAt = Number.POSITIVE_INFINITY; // (an unanswered probe of b would make it suspect)
    // c is on the other side: a counts it dead.
    receive(a, "d", { type: "gossip", updates: [{ kind: "dead", node: "c", incarnation: 2, from: "d" }] }, 1);
    receive(a, "d", { type: "gossip", updates: [{ kind: "dead", node: "c", incarnation: 2, from: "d" }] }, 1 + (a.members.get("c")?.suspicion?.minMs ?? 0));
    assert.equal(a.members.get("c")?.status, "dead");
    const fromDead = receive(a, "c", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "c" }] }, 300);
    assert.equal(a.members.get("b")?.status, "alive", "a verdict from a member counted dead changes nothing");
    assert.deepEqual(fromDead.send.filter((o) => o.message.updates.some((u) => u.node === "b")), [], "and nobody is told");
    // c refutes and is back; its verdicts, still relayed by others, stay stale for staleVerdictMs.
    receive(a, "c", { type: "gossip", updates: [alive("c", 3)] }, 310);
    assert.equal(a.members.get("c")?.status, "alive");
    receive(a, "d", { type: "gossip", updates: [{ kind: "suspect", node: "b", incarnation: 1, from: "c" }] }, 359);
    assert.equal(a.members.get("b")?.status, "alive", "a relayed verdict of the revived member is stale too");
    receive(a, "d", { type: "gossip", updates: [{ kind: "suspect", node: "b", incarnation: 1, from: "c" }] }, 360);
    assert.equal(a.members.get("b")?.status, "suspect", "after staleVerdictMs its verdicts count again");
  });

  it("takes no verdicts from a datagram that says it is dead or suspect (at any incarnation), and a sender that says it is dead is stale for staleVerdictMs", () => {
    const a = member("a", ["b", "c", "d", "e"], { staleVerdictMs: 50 });
    a.nextProbeAt = Number.POSITIVE_INFINITY;
    const verdicts: Update[] = [
      { kind: "dead", node: "b", incarnation: 1, from: "e" },
      { kind: "suspect", node: "c", incarnation: 1, from: "e" },
    ];
    const first = a.incarnation;
    // c (never counted dead here: nobody on this side probed it during the partition) says a is dead.
    const told = receive(a, "c", { type: "ping", seq: 1, target: "a", updates: [{ kind: "dead", node: "a", incarnation: first, from: "c" }, ...verdicts] }, 1);
    assert.equal(a.incarnation, first + 1, "a refutes");
    assert.equal(a.members.get("b")?.status, "alive", "the verdicts beside it are not taken");
    assert.equal(a.members.get("c")?.status, "alive");
    assert.deepEqual(sentTo(told.send, "ack"), ["c"], "the ping is still answered");
    receive(a, "d", { type: "gossip", updates: [{ kind: "suspect", node: "b", incarnation: 1, from: "c" }] }, 50);
    assert.equal(a.members.get("b")?.status, "alive", "c's own verdicts, relayed, are stale for staleVerdictMs");
    receive(a, "d", { type: "gossip", updates: [{ kind: "suspect", node: "b", incarnation: 1, from: "c" }] }, 51);
    assert.equal(a.members.get("b")?.status, "suspect", "and count again after it");
    // d suspects a at its current incarnation (a's buddy ping, from a view a knows is wrong): its other verdicts
    // in that datagram are not taken, but d stays a credible accuser — a suspicion is no claim, loss makes them.
    receive(a, "d", { type: "ping", seq: 2, target: "a", updates: [{ kind: "suspect", node: "a", incarnation: first + 1, from: "d" }, { kind: "suspect", node: "e", incarnation: 1, from: "d" }] }, 60);
    assert.equal(a.incarnation, first + 2);
    assert.equal(a.members.get("e")?.status, "alive");
    receive(a, "b", { type: "gossip", updates: [{ kind: "suspect", node: "e", incarnation: 1, from: "d" }] }, 61);
    assert.equal(a.members.get("e")?.status, "suspect");
    // Said of an incarnation a has refuted already (the liveness thread refutes before the core reads the
    // datagram), it is the same view, only behind.
    receive(a, "e", { type: "gossip", updates: [{ kind: "dead", node: "a", incarnation: first, from: "e" }, { kind: "suspect", node: "c", incarnation: 1, from: "d" }] }, 62);
    assert.equal(a.incarnation, first + 2, "nothing to refute");
    assert.equal(a.members.get("c")?.status, "alive");
    receive(a, "b", { type: "gossip", updates: [{ kind: "suspect", node: "c", incarnation: 1, from: "d" }] }, 62);
    assert.equal(a.members.get("c")?.status, "suspect");
    // A member's own leave is news whoever passes it on.
    receive(a, "e", { type: "gossip", updates: [{ kind: "dead", node: "a", incarnation: first + 2, from: "e" }, { kind: "dead", node: "d", incarnation: 1, from: "d" }] }, 63);
    assert.equal(a.members.get("d")?.status, "left");
  });

  it("agrees with another member's death verdict once its own suspicion has lasted its minimum", () => {
    const a = member("a", ["b", "c"]);
    receive(a, "c", { type: "gossip", updates: [{ kind: "suspect", node: "b", incarnation: 1, from: "c" }] }, 0);
    const minMs = a.members.get("b")?.suspicion?.minMs as number;
    receive(a, "c", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "c" }] }, minMs - 1);
    assert.equal(a.members.get("b")?.status, "suspect");
    receive(a, "c", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "c" }] }, minMs);
    assert.equal(a.members.get("b")?.status, "suspect", "hearsay: checked first");
    assert.equal(tick(a, minMs + CHECK_MS).notes.some((n) => n.kind === "dead"), true, "b did not answer");
    assert.equal(a.members.get("b")?.status, "dead");
  });

  it("checks hearsay before it is believed: pings the suspect when the suspicion runs out, and counts it dead only if no refutation comes", () => {
    const witnessed = (node: string, from: string, extra: Partial<Update> = {}): Update => ({ kind: "suspect", node, incarnation: 1, from, witnesses: 2, ...extra }) as Update;
    const a = member("a", ["b", "c", "d", "e", "f", "g"]);
    a.nextProbeAt = Number.POSITIVE_INFINITY;
    const minMs = 200;
    // b, d and e are suspected by c (its probe failed, two helpers nacked), f by a itself, g by c after g's port refused.
    receive(a, "c", { type: "gossip", updates: [witnessed("b", "c"), witnessed("d", "c"), witnessed("e", "c"), witnessed("f", "a"), witnessed("g", "c", { ageMs: 0 })] }, 0);
    assert.equal(a.members.get("b")?.suspicion?.minMs, minMs);
    const out = tick(a, minMs);
    assert.deepEqual(out.notes.filter((n) => n.kind === "dead").map((n) => (n as { node: string }).node).sort(), ["f", "g"], "its own accusation and a closed port: no check");
    const checks = out.send.filter((o) => o.message.type === "ping");
    // Two pings each, as the buddy pings: one lost to 5 % loss each way would count a live suspect dead.
    assert.deepEqual(checks.map((o) => o.to).sort(), ["b", "b", "d", "d", "e", "e"]);
    // Each check carries the suspicion, so a suspect that has not heard of it refutes in its ack.
    for (const o of checks) assert.deepEqual(o.message.updates[0], { kind: "suspect", node: o.to, incarnation: 1, from: "a", witnesses: 2 });
    // b refutes in its ack; a verdict about d from another member waits for the check; e says nothing.
    const seqOf = (to: string) => {
      const check = checks.find((o) => o.to === to)?.message;
      assert.ok(check?.type === "ping");
      return check.seq;
    };
    receive(a, "b", { type: "ack", seq: seqOf("b"), updates: [alive("b", 2)] }, minMs + 1);
    receive(a, "c", { type: "gossip", updates: [{ kind: "dead", node: "d", incarnation: 1, from: "c" }] }, minMs + 2);
    assert.equal(a.members.get("d")?.status, "suspect");
    assert.equal(tick(a, minMs + CHECK_MS - 1).notes.some((n) => n.kind === "dead"), false);
    const after = tick(a, minMs + CHECK_MS);
    assert.deepEqual(after.notes.filter((n) => n.kind === "dead").map((n) => (n as { node: string }).node).sort(), ["d", "e"]);
    assert.equal(a.members.get("b")?.status, "alive");
    assert.equal(a.members.get("b")?.incarnation, 2);
    assert.deepEqual(sentTo(after.send, "ping"), [], "checked once");
  });

  it("a verdict about a member it counts alive: suspects it itself, and takes the verdicts only after the suspect had its time to answer the buddy pings", () => {
    const a = member("a", ["b", "c", "d", "e"]);
    a.nextProbeAt = Number.POSITIVE_INFINITY;
    const out = receive(a, "c", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "c" }] }, 0).send;
    assert.deepEqual(sentTo(out, "ping"), ["b", "b"], "the buddy pings");
    receive(a, "d", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "d" }] }, 1);
    receive(a, "e", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "e" }] }, 2);
    assert.equal(a.members.get("b")?.status, "suspect", "confirmed twice, but b is given its time");
    // b had refuted that incarnation long ago (stale verdicts after a heal): its ack says so, in time.
    receive(a, "b", { type: "ack", seq: 1, updates: [alive("b", 3)] }, CHECK_MS - 1);
    tick(a, CHECK_MS);
    assert.equal(a.members.get("b")?.status, "alive");
    // The same, unanswered: dead once the wait is over, before the minimum.
    receive(a, "c", { type: "gossip", updates: [{ kind: "dead", node: "e", incarnation: 1, from: "c" }] }, 100);
    receive(a, "d", { type: "gossip", updates: [{ kind: "dead", node: "e", incarnation: 1, from: "d" }] }, 101);
    receive(a, "b", { type: "gossip", updates: [{ kind: "dead", node: "e", incarnation: 1, from: "b" }] }, 102);
    assert.equal(tick(a, 100 + CHECK_MS - 1).notes.some((n) => n.kind === "dead"), false);
    assert.equal(tick(a, 100 + CHECK_MS).notes.some((n) => n.kind === "dead" && n.node === "e"), true);
  });

  it("takes another member's death verdict at once when its suspicion has its confirmations and the suspect's port was closed", () => {
    const a = member("a", ["b", "c", "d", "e", "f"]);
    a.nextProbeAt = Number.POSITIVE_INFINITY;
    // f's port refused c's probe and c's helpers nacked (an aged suspicion, witnessed twice): taken at once.
    receive(a, "c", { type: "gossip", updates: [{ kind: "suspect", node: "f", incarnation: 1, from: "c", witnesses: 2, ageMs: 0 }] }, 0);
    receive(a, "d", { type: "gossip", updates: [{ kind: "dead", node: "f", incarnation: 1, from: "d" }] }, 1);
    assert.equal(a.members.get("f")?.status, "dead", "taken before the suspicion's minimum");
    // b merely unanswered (a partition, a stalled process): confirmed twice, b is still asked first.
    receive(a, "c", { type: "gossip", updates: [{ kind: "suspect", node: "b", incarnation: 1, from: "c" }] }, 10);
    receive(a, "d", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "d" }] }, 11);
    const asked = receive(a, "e", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "e" }] }, 12).send;
    assert.deepEqual(sentTo(asked, "ping"), ["b", "b"]);
    assert.equal(a.members.get("b")?.status, "suspect", "not a closed port: b is asked first");
    assert.equal(tick(a, 12 + CHECK_MS - 1).notes.some((n) => n.kind === "dead"), false);
    assert.equal(tick(a, 12 + CHECK_MS).notes.some((n) => n.kind === "dead" && n.node === "b"), true, "unanswered: dead before the minimum");
  });

  it("while a partition heals, takes no death verdict before its own suspicion has lasted its minimum, confirmations or not", () => {
    const a = member("a", ["b", "c", "d", "e", "f"]);
    a.nextProbeAt = Number.POSITIVE_INFINITY;
    // f is on the other side: a counts it dead (its own suspicion, then e's verdict once the minimum is over).
    receive(a, "e", { type: "gossip", updates: [{ kind: "dead", node: "f", incarnation: 1, from: "e" }] }, 0);
    const minMs = a.members.get("f")?.suspicion?.minMs as number;
    receive(a, "e", { type: "gossip", updates: [{ kind: "dead", node: "f", incarnation: 1, from: "e" }] }, minMs);
    assert.equal(a.members.get("f")?.status, "dead");
    // f speaks: the partition heals.
    const t = minMs + 1;
    receive(a, "f", { type: "gossip", updates: [] }, t);
    assert.ok(a.healingUntil > t, "healing");
    receive(a, "c", { type: "gossip", updates: [{ kind: "suspect", node: "b", incarnation: 1, from: "c", witnesses: 2 }] }, t + 1);
    receive(a, "d", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "d" }] }, t + 2);
    receive(a, "e", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "e" }] }, t + 3);
    assert.equal(a.members.get("b")?.status, "suspect", "confirmed, but the refutation gets the minimum");
    receive(a, "b", { type: "gossip", updates: [alive("b", 2)] }, t + 1 + minMs - 1);
    assert.equal(a.members.get("b")?.status, "alive", "and it refuted in time");
  });

  it("after hearing from a member it counts dead, pings the members it counts dead every 50 ms for staleVerdictMs", () => {
    const a = member("a", ["b", "c", "d", "e"]);
    // Only the reconnect pings under test: no probe (one left unanswered would make b or e suspect, then dead).
    a.nextProbeAt = Number.POSITIVE_INFINITY;
    for (const at of [0, 1000]) for (const n of ["c", "d"]) receive(a, "e", { type: "gossip", updates: [{ kind: "dead", node: n, incarnation: 1, from: "e" }] }, at);
    assert.equal(a.members.get("c")?.status, "dead");
    assert.equal(a.members.get("d")?.status, "dead");
    // Pings whose first word is "you are dead": the reconnect pings.
    const reconnects = (from: number, to: number) => {
      let count = 0;
      for (let t = from; t < to; t += 10) {
        for (const o of tick(a, t).send) {
          const first = o.message.updates[0];
          if (o.message.type === "ping" && first?.kind === "dead" && first.node === o.to && first.from === "a") count += 1;
          // b and e are up: they answer the probes.
          if (o.message.type === "ping" && (o.to === "b" || o.to === "e")) receive(a, o.to, { type: "ack", seq: o.message.seq, updates: [] }, t);
        }
      }
      return count;
    };
    a.nextReconnectAt = 2000;
    assert.ok(reconnects(2000, 3000) <= 2, "2 a second while nothing heals");
    receive(a, "c", { type: "gossip", updates: [] }, 3000);
    const healing = reconnects(3000, 4000);
    assert.ok(healing >= 15, `${healing} a second while a partition heals`);
    assert.ok(reconnects(3000 + DEFAULT_GOSSIP_TIMING.staleVerdictMs + 100, 3000 + DEFAULT_GOSSIP_TIMING.staleVerdictMs + 1100) <= 2, "and 2 a second again afterwards");
  });

  it("tells a member it believes dead, when that one speaks, what it believes (at most once per period)", () => {
    const a = member("a", ["b", "c"]);
    receive(a, "c", { type: "gossip", updates: [{ kind: "suspect", node: "b", incarnation: 1, from: "c" }] }, 0);
    receive(a, "c", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "c" }] }, 1000);
    tick(a, 1000 + CHECK_MS);
    assert.equal(a.members.get("b")?.status, "dead");
    const first = receive(a, "b", { type: "gossip", updates: [] }, 1101).send.filter((o) => o.to === "b" && o.message.type === "ping");
    assert.deepEqual(first[0]?.message.updates[0], { kind: "dead", node: "b", incarnation: 1, from: "a" });
    assert.deepEqual(receive(a, "b", { type: "gossip", updates: [] }, 1102).send.filter((o) => o.to === "b" && o.message.type === "ping"), []);
  });

  it("refutes a suspicion or death about itself with a higher incarnation, sent on the next message", () => {
    const a = member("a", ["b", "c"]);
    const before = a.incarnation;
    const { notes } = receive(a, "b", { type: "gossip", updates: [{ kind: "suspect", node: "a", incarnation: before, from: "b" }] }, 10);
    assert.equal(a.incarnation, before + 1);
    assert.deepEqual(notes.filter((n) => n.kind === "refuted"), [{ kind: "refuted", incarnation: before + 1, from: "b" }]);
    const ack = receive(a, "c", { type: "ping", seq: 1, target: "a", updates: [] }, 11).send.find((o) => o.message.type === "ack");
    assert.deepEqual(ack?.message.updates[0], alive("a", before + 1));
    receive(a, "b", { type: "gossip", updates: [{ kind: "dead", node: "a", incarnation: before + 1, from: "b" }] }, 12);
    assert.equal(a.incarnation, before + 2);
    receive(a, "b", { type: "gossip", updates: [{ kind: "suspect", node: "a", incarnation: before, from: "b" }] }, 13);
    assert.equal(a.incarnation, before + 2, "an old suspicion needs no refutation");
  });

  it("takes a higher incarnation given elsewhere (the liveness thread refuted first) and gossips its record at once; a lower one changes nothing", () => {
    const a = member("a", ["b", "c"]);
    const before = a.incarnation;
    const { send } = adoptIncarnation(a, before + 3, 10);
    assert.equal(a.incarnation, before + 3);
    const gossip = send.filter((o) => o.message.type === "gossip");
    assert.ok(gossip.length > 0, "gossiped at once");
    for (const o of gossip) assert.deepEqual(o.message.updates[0], alive("a", before + 3));
    assert.deepEqual(adoptIncarnation(a, before + 1, 11), { send: [], notes: [] });
    assert.equal(a.incarnation, before + 3);
    // The accusation the thread refuted, read afterwards, needs no refutation of the core's own.
    receive(a, "b", { type: "gossip", updates: [{ kind: "suspect", node: "a", incarnation: before + 2, from: "b" }] }, 12);
    assert.equal(a.incarnation, before + 3);
  });

  it("gossips a refutation at once, its own and one it learns of, not at the next round; other news waits for the round", () => {
    const gossipOf = (out: Outgoing[], node: string) => out.filter((o) => o.message.type === "gossip" && o.message.updates.some((u) => u.kind === "alive" && u.node === node));
    const peers = ["b", "c", "d", "e", "f"];
    // The suspect: mid-round (its last round 10 ms ago), it hears the suspicion and sends its refutation now.
    const a = member("a", peers);
    a.nextProbeAt = Number.POSITIVE_INFINITY;
    a.nextGossipAt = 40;
    const own = receive(a, "b", { type: "gossip", updates: [{ kind: "suspect", node: "a", incarnation: a.incarnation, from: "b" }] }, 10).send;
    assert.equal(gossipOf(own, "a").length, DEFAULT_GOSSIP_TIMING.gossipFanout);
    // A member that suspected c hears c's refutation mid-round, and passes it on now too.
    const b = member("b", ["a", "c", "d", "e", "f"]);
    b.nextProbeAt = Number.POSITIVE_INFINITY;
    receive(b, "d", { type: "gossip", updates: [{ kind: "suspect", node: "c", incarnation: 1, from: "d" }] }, 0);
    b.nextGossipAt = 40;
    const passed = receive(b, "e", { type: "gossip", updates: [alive("c", 2)] }, 10).send;
    assert.equal(gossipOf(passed, "c").length, DEFAULT_GOSSIP_TIMING.gossipFanout);
    assert.equal(b.nextGossipAt, 10 + DEFAULT_GOSSIP_TIMING.gossipIntervalMs, "the round is brought forward, not added");
    // News that refutes nothing (a member it counted alive, at a higher incarnation) waits for the round.
    const news = receive(b, "e", { type: "gossip", updates: [alive("f", 5)] }, 20).send;
    assert.deepEqual(gossipOf(news, "f"), []);
  });

  // [other members, confirmations (suspecters beyond the first), witnesses the first reported, timeout ms] with
  // T = 200: at least max(200, α·log10 N·T) with α = 0.5, at most 4·max(200, log10 N·T).
  const timeouts: Array<[number, number, number, number]> = [
    [1, 0, 0, 200], // two members: nobody could confirm, the minimum at once
    [9, 0, 0, 800], // 10 members: min 200 ms, max 800 ms
    [9, 1, 0, 800 - 600 * (Math.log(2) / Math.log(3))],
    [9, 0, 1, 800 - 600 * (Math.log(2) / Math.log(3))],
    [9, 2, 0, 200],
    [9, 5, 0, 200],
    [999, 0, 0, 4 * 3 * 200],
    [999, 2, 0, 0.5 * 3 * 200],
    [999, 0, 2, 0.5 * 3 * 200], // an indirect probe's two nacks: as good as two more accusers
    [999, 1, 1, 0.5 * 3 * 200],
    [999, 0, 1, 2400 - 2100 * (Math.log(2) / Math.log(3))],
  ];
  for (const [up, confirmations, witnesses, expected] of timeouts) {
    it(`a suspicion among ${up + 1} members with ${confirmations} confirmations and ${witnesses} witnesses lasts ${Math.round(expected)} ms`, () => {
      const peers = Array.from({ length: up }, (_, i) => `p${i}`);
      const a = member("a", peers);
      const first: Update = { kind: "suspect", node: "p0", incarnation: 1, from: up > 1 ? "p1" : "a" };
      if (witnesses > 0) first.witnesses = witnesses;
      receive(a, "p0", { type: "gossip", updates: [first] }, 0);
      for (let i = 0; i < confirmations; i++) receive(a, "p0", { type: "gossip", updates: [{ kind: "suspect", node: "p0", incarnation: 1, from: `p${i + 2}` }] }, 0);
      const suspicion = a.members.get("p0")?.suspicion;
      assert.ok(suspicion !== undefined);
      assert.ok(Math.abs(suspicionTimeout(suspicion) - expected) < 1e-6, `${suspicionTimeout(suspicion)}`);
    });
  }

  // [the suspicion as heard at 1,000 ms among 1,000 members, when its hearer drops the suspect]: an aged suspicion
  // (its accuser's probe was refused, and witnessed) is counted from the accuser's start, but a hearer waits at
  // least 100 ms (a third of the 300 ms minimum), so that the suspect's refutation can still reach it.
  const aged = (ageMs: number | undefined, witnesses = 2, from = "p1"): Update => ({ kind: "suspect", node: "p0", incarnation: 1, from, ...(witnesses > 0 ? { witnesses } : {}), ...(ageMs === undefined ? {} : { ageMs }) });
  const ages: Array<[string, Update, number]> = [
    ["no age: the minimum from the hearing, then the check", aged(undefined), 1300 + CHECK_MS],
    ["age 0", aged(0), 1300],
    ["age 120: 120 ms sooner", aged(120), 1180],
    ["age 200: the most a hearer takes off", aged(200), 1100],
    ["age 250: the hearer still waits 100 ms", aged(250), 1100],
    ["age 65,535: the hearer still waits 100 ms", aged(65_535), 1100],
  ];
  for (const [name, heard, deadAt] of ages) {
    it(`a witnessed suspicion heard with ${name}: the suspect is dropped at ${deadAt} ms, not before`, () => {
      const a = member("a", Array.from({ length: 999 }, (_, i) => `p${i}`));
      a.nextProbeAt = Number.POSITIVE_INFINITY;
      receive(a, "p1", { type: "gossip", updates: [heard] }, 1000);
      // Woken at every millisecond, as at each of its deadlines.
      for (let t = 1001; t < deadAt; t++) assert.equal(tick(a, t).notes.some((n) => n.kind === "dead"), false, `${t}`);
      assert.deepEqual(tick(a, deadAt).notes.filter((n) => n.kind === "dead").map((n) => (n as { node: string }).node), ["p0"]);
    });
  }

  it("a closed port's (aged) suspicion is passed on at once; a witnessed one without an age waits for the round", () => {
    for (const [heard, atOnce] of [
      [aged(0), true],
      [aged(undefined), false],
    ] as Array<[Update, boolean]>) {
      const a = member("a", Array.from({ length: 999 }, (_, i) => `p${i}`));
      a.nextProbeAt = Number.POSITIVE_INFINITY;
      a.nextGossipAt = 1040;
      const sent = receive(a, "p1", { type: "gossip", updates: [heard] }, 1000).send;
      const passed = sent.filter((o) => o.message.type === "gossip" && o.message.updates.some((u) => u.kind === "suspect" && u.node === "p0"));
      assert.equal(passed.length, atOnce ? DEFAULT_GOSSIP_TIMING.gossipFanout : 0, JSON.stringify(heard));
    }
  });

  it("an age on a suspicion without witnesses is not believed: it lasts as long as if heard new", () => {
    const a = member("a", Array.from({ length: 999 }, (_, i) => `p${i}`));
    receive(a, "p1", { type: "gossip", updates: [aged(250, 0)] }, 1000);
    assert.equal(a.members.get("p0")?.suspicion?.startedAt, 1000);
  });

  it("a suspicion heard again with an older age starts earlier, never later; it is passed on with its age here", () => {
    const a = member("a", Array.from({ length: 999 }, (_, i) => `p${i}`));
    a.nextProbeAt = Number.POSITIVE_INFINITY;
    receive(a, "p1", { type: "gossip", updates: [{ kind: "suspect", node: "p0", incarnation: 1, from: "p1" }] }, 1000);
    receive(a, "p2", { type: "gossip", updates: [aged(10, 2, "p2")] }, 1050);
    assert.equal(a.members.get("p0")?.suspicion?.startedAt, 1000, "younger than the one already running: no change");
    receive(a, "p3", { type: "gossip", updates: [aged(150, 2, "p3")] }, 1060);
    assert.equal(a.members.get("p0")?.suspicion?.startedAt, 910);
    const passed = tick(a, 1060 + DEFAULT_GOSSIP_TIMING.gossipIntervalMs).send.flatMap((o) => o.message.updates).filter((u) => u.kind === "suspect" && u.node === "p0");
    assert.ok(passed.length > 0, "the next gossip round passes it on");
    for (const u of passed) assert.deepEqual(u, { kind: "suspect", node: "p0", incarnation: 1, from: "p2", witnesses: 2, ageMs: 200 });
    assert.equal(tick(a, 1209).notes.some((n) => n.kind === "dead"), false);
    assert.equal(tick(a, 1210).notes.some((n) => n.kind === "dead"), true, "300 ms after the earliest start");
  });

  for (const nacks of [0, 1]) {
  it(`a probe with ${nacks} of its 2 helpers nacking (a partition, or one lost datagram) suspects without witnesses`, () => {
    const a = member("a", ["b", "c", "d", "e"], { indirectProbes: 2 });
    const ping = tick(a, 0).send.find((o) => o.message.type === "ping") as Outgoing;
    const requests = tick(a, DEFAULT_GOSSIP_TIMING.probeTimeoutMs).send.filter((o) => o.message.type === "ping-req");
    for (const r of requests.slice(0, nacks)) receive(a, r.to, { type: "nack", seq: (ping.message as { seq: number }).seq, updates: [] }, 100);
    const buddy = tick(a, DEFAULT_GOSSIP_TIMING.probeIntervalMs).send.find((o) => o.to === ping.to && o.message.type === "ping");
    assert.deepEqual(buddy?.message.updates[0], { kind: "suspect", node: ping.to, incarnation: 1, from: "a" });
    const suspicion = a.members.get(ping.to)?.suspicion;
    assert.ok(suspicion !== undefined);
    assert.equal(suspicionTimeout(suspicion), 800, "the longest wait: nobody confirmed it");
  });
  }

  it("confirmations from other members shorten a suspicion; it ends in death", () => {
    const peers = Array.from({ length: 9 }, (_, i) => `p${i}`);
    const a = member("a", peers);
    a.nextProbeAt = Number.POSITIVE_INFINITY; // only the suspicion under test
    receive(a, "p1", { type: "gossip", updates: [{ kind: "suspect", node: "p0", incarnation: 1, from: "p1" }] }, 1000);
    assert.equal(tick(a, 1000 + 799).notes.some((n) => n.kind === "dead"), false);
    receive(a, "p2", { type: "gossip", updates: [{ kind: "suspect", node: "p0", incarnation: 1, from: "p2" }] }, 1000 + 100);
    receive(a, "p3", { type: "gossip", updates: [{ kind: "suspect", node: "p0", incarnation: 1, from: "p3" }] }, 1000 + 150);
    // Two confirmations: the suspicion lasts its minimum (200 ms), long over; then a's check of p0 goes unanswered.
    assert.deepEqual(sentTo(tick(a, 1000 + 200).send, "ping"), ["p0", "p0"]);
    const { notes } = tick(a, 1000 + 200 + CHECK_MS);
    assert.deepEqual(notes.filter((n) => n.kind === "dead").map((n) => (n as { node: string }).node), ["p0"]);
    assert.equal(liveMembers(a).has("p0"), false);
  });

  it("spreads a confirmation only while the suspicion lacks confirmations: a third confirmer is kept, not sent", () => {
    const peers = Array.from({ length: 9 }, (_, i) => `p${i}`);
    const a = member("a", peers);
    a.nextProbeAt = Number.POSITIVE_INFINITY;
    const suspect = (from: string) => ({ kind: "suspect" as const, node: "p0", incarnation: 1, from });
    const pendingAboutP0 = () => pendingUpdates(a).filter((u) => u.node === "p0");
    receive(a, "p1", { type: "gossip", updates: [suspect("p1")] }, 1000);
    assert.deepEqual(pendingAboutP0(), [suspect("p1")]);
    receive(a, "p2", { type: "gossip", updates: [suspect("p2")] }, 1010);
    receive(a, "p3", { type: "gossip", updates: [suspect("p3")] }, 1020);
    assert.deepEqual(pendingAboutP0(), [suspect("p3")], "the second confirmation is spread");
    receive(a, "p4", { type: "gossip", updates: [suspect("p4")] }, 1030);
    assert.deepEqual(pendingAboutP0(), [suspect("p3")], "a third changes no timer: not spread");
    assert.equal(a.members.get("p0")?.suspicion?.confirmers.has("p4"), true, "but counted");
  });

  it("sends each update λ·ceil(log10(N + 1)) times, then drops it", () => {
    const peers = Array.from({ length: 20 }, (_, i) => `p${i}`);
    const a = member("a", peers, { gossipFanout: 1 });
    a.nextProbeAt = Number.POSITIVE_INFINITY;
    receive(a, "p1", { type: "gossip", updates: [alive("p0", 5)] }, 10);
    const limit = retransmitLimit(DEFAULT_GOSSIP_TIMING, 21);
    assert.equal(limit, 4 * 2);
    let sent = 0;
    for (let t = 10; t < 10 + 100 * DEFAULT_GOSSIP_TIMING.gossipIntervalMs; t += DEFAULT_GOSSIP_TIMING.gossipIntervalMs) {
      a.probe = undefined;
      a.nextProbeAt = Number.POSITIVE_INFINITY;
      a.nextReconnectAt = Number.POSITIVE_INFINITY;
      for (const o of tick(a, t).send) sent += o.message.updates.filter((u) => u.node === "p0" && u.incarnation === 5).length;
    }
    assert.equal(sent, limit);
  });

  it("fits piggybacked updates in the byte budget and keeps the rest for later", () => {
    const peers = Array.from({ length: 50 }, (_, i) => `peer-${String(i).padStart(3, "0")}`);
    const a = member("a", peers, { maxPiggybackBytes: 100, gossipFanout: 1 });
    receive(a, "peer-000", { type: "gossip", updates: peers.map((p) => alive(p, 2)) }, 10);
    const gossip = tick(a, 10 + DEFAULT_GOSSIP_TIMING.gossipIntervalMs).send.find((o) => o.message.type === "gossip") as Outgoing;
    const size = gossip.message.updates.reduce((sum, u) => sum + a.config.updateSize(u), 0);
    assert.ok(size <= 100 && size > 100 - 24, `${size} bytes`);
    assert.ok(pendingUpdates(a).length > 40);
  });

  it("a newer update about a member replaces the waiting one", () => {
    const a = member("a", ["b", "c"]);
    receive(a, "c", { type: "gossip", updates: [alive("b", 2)] }, 1);
    receive(a, "c", { type: "gossip", updates: [alive("b", 3)] }, 2);
    assert.deepEqual(
      pendingUpdates(a),
      [alive("b", 3)],
    );
  });

  it("answers a sync with its whole view in state messages, which the joiner applies without spreading", () => {
    const peers = Array.from({ length: 30 }, (_, i) => `peer-${i}`);
    const b = member("b", ["joiner", ...peers], { maxPiggybackBytes: 200 });
    const answer = receive(b, "joiner", { type: "sync", updates: [alive("joiner", 500, false)] }, 10).send.filter((o) => o.message.type === "state");
    assert.ok(answer.length > 1, "chunked");
    const joiner = createGossip(config(), "joiner", 500, 0);
    setPeers(joiner, ["joiner", "b", ...peers], 0);
    joiner.queue.clear();
    joiner.fresh.clear();
    for (const o of answer) receive(joiner, "b", o.message, 11);
    assert.equal(joiner.members.size, 31);
    assert.equal(pendingUpdates(joiner).length, 0, "nothing of it is news");
    assert.equal(b.members.get("joiner")?.ready, false, "the responder counts the joiner as joining");
  });

  it("a starting member syncs, stays joining for its grace, then says ready with a new incarnation", () => {
    const a = createGossip(config({ joinGraceMs: 500 }), "a", 100, 0);
    const first = setPeers(a, ["a", "b", "c"], 0);
    assert.equal(sentTo(first.send, "sync").length, 2);
    receive(a, "b", { type: "state", updates: [alive("b", 1), alive("c", 1)] }, 10);
    assert.equal(tick(a, 499).notes.some((n) => n.kind === "ready"), false);
    assert.equal(a.phase, "joining");
    const { notes } = tick(a, 500);
    assert.deepEqual(notes.filter((n) => n.kind === "ready" || n.kind === "converged"), [{ kind: "ready", neverHeard: [] }, { kind: "converged" }]);
    assert.equal(a.incarnation, 101);
    assert.deepEqual(liveMembers(a), new Set(["a", "b", "c"]));
  });

  it("stays joining while a peer was never heard of, asking again, up to the silent-peer wait", () => {
    const a = createGossip(config({ joinGraceMs: 500, silentPeerGraceMs: 3000 }), "a", 100, 0);
    setPeers(a, ["a", "b", "gone"], 0);
    receive(a, "b", { type: "state", updates: [alive("b", 1)] }, 10);
    const retry = tick(a, 1000);
    assert.equal(a.phase, "joining");
    assert.ok(sentTo(retry.send, "sync").length === 1, "asks another member");
    tick(a, 2999);
    assert.equal(a.phase, "joining");
    assert.deepEqual(tick(a, 3000).notes.find((n) => n.kind === "ready"), { kind: "ready", neverHeard: ["gone"] });
  });

  it("a ready member does not count itself while a peer it hears is joining, up to the joining limit", () => {
    const a = createGossip(config({ joinGraceMs: 0, joiningLimitMs: 1500 }), "a", 100, 0);
    setPeers(a, ["a", "b"], 0);
    receive(a, "b", { type: "state", updates: [alive("b", 1, false)] }, 0);
    tick(a, 10);
    assert.equal(a.phase, "ready");
    assert.equal(a.converged, false);
    assert.deepEqual(liveMembers(a), new Set());
    receive(a, "b", { type: "gossip", updates: [alive("b", 2, true)] }, 300);
    assert.deepEqual(liveMembers(a), new Set(["a", "b"]), "b ready: a converged");

    const c = createGossip(config({ joinGraceMs: 0, joiningLimitMs: 1500 }), "c", 100, 0);
    setPeers(c, ["c", "stuck"], 0);
    receive(c, "stuck", { type: "state", updates: [alive("stuck", 1, false)] }, 0);
    c.nextProbeAt = Number.POSITIVE_INFINITY;
    tick(c, 1500);
    assert.equal(c.converged, false);
    tick(c, 1501);
    assert.deepEqual(liveMembers(c), new Set(["c"]), "a peer joining too long is not waited for, nor counted");
  });

  it("a leaving member tells a few members twice; they drop it at once and spread it", () => {
    const a = member("a", ["b", "c"]);
    const { send } = leave(a, 10);
    assert.deepEqual(send.map((o) => o.to).sort(), ["b", "b", "c", "c"]);
    assert.deepEqual(send[0]?.message.updates, [{ kind: "dead", node: "a", incarnation: a.incarnation, from: "a" }]);
    assert.equal(liveMembers(a).has("a"), false);
    const b = member("b", ["a", "c"]);
    receive(b, "a", send[0]?.message as Message, 11);
    assert.equal(b.members.get("a")?.status, "left");
    assert.deepEqual(liveMembers(b), new Set(["b", "c"]));
    assert.deepEqual(receive(a, "b", { type: "ping", seq: 1, target: "a", updates: [] }, 12).send, [], "a left member answers nothing");
  });

  it("a stalled tick moves every deadline by the gap instead of suspecting the member being probed", () => {
    const a = member("a", ["b", "c"], { stallMs: 250 });
    const ping = tick(a, 0).send.find((o) => o.message.type === "ping") as Outgoing;
    // The process was stopped for 2 s: the ack is read (I/O first) and then the late timer runs.
    const late = tick(a, 2000);
    // Late by 2 s less the wait the last step expected (the direct probe's retry, half its timeout).
    assert.deepEqual(late.notes.filter((n) => n.kind === "stalled"), [{ kind: "stalled", ms: 2000 - DEFAULT_GOSSIP_TIMING.probeTimeoutMs / 2 }]);
    assert.equal(a.members.get(ping.to)?.status, "alive");
    assert.equal(a.localHealth, 1, "a stall worsens local health");
    receive(a, ping.to, { type: "ack", seq: (ping.message as { seq: number }).seq, updates: [] }, 2001);
    assert.equal(a.probe, undefined);
  });

  it("push-pull: about every pushPullIntervalMs a member sends its whole view to one member and asks for its own", () => {
    const peers = Array.from({ length: 9 }, (_, i) => `p${i}`);
    const a = member("a", peers, { pushPullIntervalMs: 1000 });
    a.nextPushPullAt = 500;
    const exchanges: Outgoing[][] = [];
    for (let t = 0; t < 10_500; t += 10) {
      const out = tick(a, t).send.filter((o) => o.message.type === "state" || o.message.type === "sync");
      for (const o of out) if (o.message.type === "ping") receive(a, o.to, { type: "ack", seq: o.message.seq, updates: [] }, t);
      if (out.length > 0) exchanges.push(out);
      // Probes answered, so nobody is suspected.
      if (a.probe !== undefined) receive(a, a.probe.target, { type: "ack", seq: a.probe.seq, updates: [] }, t);
    }
    // Intervals drawn from 0.5–1.5 × 1 s (10 members: log2(10/32) < 1, no scaling).
    assert.ok(exchanges.length >= 7 && exchanges.length <= 20, `${exchanges.length} exchanges in 10 s`);
    for (const out of exchanges) {
      assert.equal(new Set(out.map((o) => o.to)).size, 1, "with one member");
      assert.equal(out.at(-1)?.message.type, "sync", "the view, then the request for the other's");
      const view = out.filter((o) => o.message.type === "state").flatMap((o) => o.message.updates);
      assert.deepEqual(new Set(view.map((u) => u.node)), new Set(["a", ...peers]));
    }
  });

  it("push-pull at once when told it is dead after its process stopped, at most once per 10 s; not for a stall or a verdict alone", () => {
    const a = member("a", ["b", "c"], { stallMs: 250, pushPullIntervalMs: 60_000 });
    a.nextPushPullAt = Number.POSITIVE_INFINITY;
    const syncs = (step: { send: Outgoing[] }) => step.send.filter((o) => o.message.type === "sync").length;
    const dead = (incarnation: number): Message => ({ type: "gossip", updates: [{ kind: "dead", node: "a", incarnation, from: "b" }] });
    assert.equal(syncs(receive(a, "b", dead(a.incarnation), 100)), 0, "declared dead without having stopped (a partition): no");
    tick(a, 200);
    assert.equal(syncs(tick(a, 2500)), 0, "stopped 2 s, nobody said it was dead (the liveness thread acked): no");
    assert.equal(syncs(receive(a, "b", dead(a.incarnation), 2510)), 1, "then told it is dead: the whole view exchanged at once");
    tick(a, 2600);
    tick(a, 5000);
    assert.equal(syncs(receive(a, "b", dead(a.incarnation), 5010)), 0, "again within 10 s: no");
    const off = member("off", ["b", "c"], { stallMs: 250, pushPullIntervalMs: 0 });
    tick(off, 0);
    tick(off, 3000);
    assert.equal(syncs(receive(off, "b", { type: "gossip", updates: [{ kind: "dead", node: "off", incarnation: off.incarnation, from: "b" }] }, 3010)), 0, "never with pushPullIntervalMs 0");
  });

  it("local health stretches the probe period and timeout", () => {
    const a = member("a", ["b", "c"]);
    a.localHealth = 3;
    tick(a, 0);
    assert.equal(a.nextProbeAt, 4 * DEFAULT_GOSSIP_TIMING.probeIntervalMs);
    assert.equal(a.probe?.timeoutAt, 4 * DEFAULT_GOSSIP_TIMING.probeTimeoutMs);
  });

  it("pings a dead member now and then with what it believes, and the member's refutation brings it back", () => {
    const a = member("a", ["b", "c"]);
    receive(a, "c", { type: "gossip", updates: [{ kind: "dead", node: "b", incarnation: 1, from: "c" }] }, 0);
    a.nextReconnectAt = 500;
    const ping = tick(a, 500).send.find((o) => o.to === "b" && o.message.type === "ping") as Outgoing;
    assert.deepEqual(ping.message.updates.slice(0, 2), [{ kind: "dead", node: "b", incarnation: 1, from: "a" }, alive("a", a.incarnation)]);
    const b = member("b", ["a", "c"]);
    const ack = receive(b, "a", ping.message, 501).send.find((o) => o.message.type === "ack") as Outgoing;
    assert.equal(b.incarnation, 101);
    receive(a, "b", ack.message, 502);
    assert.deepEqual(a.members.get("b")?.status, "alive");
    assert.ok(liveMembers(a).has("b"));
  });

  it("wakes for the next gossip round only while an update waits to be sent", () => {
    const a = member("a", ["b", "c"]);
    const ping = tick(a, 0).send.find((o) => o.message.type === "ping") as Outgoing;
    receive(a, ping.to, { type: "ack", seq: (ping.message as { seq: number }).seq, updates: [] }, 1);
    assert.equal(nextDeadline(a), DEFAULT_GOSSIP_TIMING.probeIntervalMs, "idle: the next probe");
    receive(a, "b", { type: "gossip", updates: [alive("c", 7)] }, 10);
    assert.ok(nextDeadline(a) <= 10 + DEFAULT_GOSSIP_TIMING.gossipIntervalMs, "news: the next gossip round");
  });
});

describe("gossip clusters on a virtual clock", () => {
  const names = Array.from({ length: 24 }, (_, i) => `n${String(i).padStart(2, "0")}`);
  const everyone = names.join(",");
  const cluster = (seed: number) => {
    const c = new VirtualCluster(names, { seed });
    const deaths: Array<{ at: number; observer: string; node: string }> = [];
    const firstCounted = new Map<string, string>();
    c.onNote = (member, note, at) => {
      if (note.kind === "dead") deaths.push({ at, observer: member, node: note.node });
      if (note.kind === "converged") firstCounted.set(member, c.live(member));
    };
    for (const n of names) c.start(n);
    return { c, deaths, firstCounted };
  };

  it("members started together converge, and none counts itself before it counts every other", () => {
    const { c, firstCounted } = cluster(7);
    c.run(3000);
    for (const n of names) assert.equal(firstCounted.get(n), everyone, `${n} counted itself first with ${firstCounted.get(n)}`);
    for (const n of names) assert.equal(c.live(n), everyone, n);
  });

  it("a dead member is declared dead by every other within 1.5 s, with 5 % loss and no false death", () => {
    const { c, deaths } = cluster(11);
    const random = seededRandom(99);
    c.drop = () => random() < 0.05;
    c.run(3000);
    for (const n of names) assert.equal(c.live(n), everyone, n);
    c.kill("n05");
    const killedAt = c.now;
    c.run(killedAt + 5000);
    const others = names.filter((n) => n !== "n05");
    for (const n of others) assert.equal(c.live(n), others.join(","), n);
    const detected = others.map((o) => (deaths.find((d) => d.observer === o && d.node === "n05")?.at ?? Number.POSITIVE_INFINITY) - killedAt);
    assert.deepEqual(
      deaths.filter((d) => d.node !== "n05"),
      [],
      "no member but the dead one was declared dead",
    );
    assert.ok(Math.max(...detected) < 1500, `detection ms: ${detected.sort((x, y) => x - y).join(" ")}`);
  });

  it("a member paused for 2 s is declared dead, and counted again once when it resumes and refutes", () => {
    const { c } = cluster(19);
    const changes: string[] = [];
    c.run(3000);
    const previous = new Map(names.map((n) => [n, c.live(n).includes("n07")]));
    const observe = c.onNote;
    c.onNote = (member, note, at) => {
      observe(member, note, at);
      const has = c.live(member).includes("n07");
      if (member !== "n07" && has !== previous.get(member)) {
        changes.push(`${member}:${has ? "in" : "out"}`);
        previous.set(member, has);
      }
    };
    c.pause("n07");
    c.run(c.now + 2000);
    c.resume("n07");
    c.run(c.now + 3000);
    for (const n of names) assert.equal(c.live(n), everyone, n);
    for (const n of names.filter((x) => x !== "n07")) assert.deepEqual(changes.filter((x) => x.startsWith(`${n}:`)), [`${n}:out`, `${n}:in`], n);
  });

  it("a partition: each side declares the other dead, and after healing every member counts everyone again", () => {
    const { c } = cluster(13);
    c.run(3000);
    const left = new Set(names.slice(0, 10));
    c.drop = (from, to) => left.has(from) !== left.has(to);
    // Local health climbs on both sides (helpers across the cut send no nack), so probing slows down:
    // the other side is declared dead within seconds, not within one suspicion.
    c.run(18_000);
    assert.equal(c.live("n00"), names.slice(0, 10).join(","));
    assert.equal(c.live("n20"), names.slice(10).join(","));
    c.drop = () => false;
    c.run(c.now + 3000);
    for (const n of names) assert.equal(c.live(n), everyone, n);
  });

  it("a member that leaves is dropped by every other at once", () => {
    const { c } = cluster(17);
    c.run(3000);
    c.route("n03", leave(c.state("n03"), c.now));
    c.kill("n03");
    c.run(c.now + 300);
    for (const n of names.filter((x) => x !== "n03")) assert.equal(c.live(n).includes("n03"), false, n);
  });
});

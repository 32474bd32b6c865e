// BFD (RFC 5880/5881): control packets as bytes, the discard rules, and the state machine driven between two
// pure sessions — the three-way handshake, timer negotiation, Poll/Final, and every way down.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type BfdConfig, type BfdPacket, type BfdSessionState, bfdStep, decodeBfd, encodeBfd, initialBfdState, packetToSend } from "@bollard/bgp";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const upPacket: BfdPacket = {
  diagnostic: 0,
  state: "Up",
  poll: false,
  final: true,
  controlPlaneIndependent: false,
  demand: false,
  detectMultiplier: 3,
  myDiscriminator: 1,
  yourDiscriminator: 0x0a0b0c0d,
  desiredMinTxInterval: 300_000,
  requiredMinRxInterval: 300_000,
  requiredMinEchoRxInterval: 50_000,
};

describe("BFD control packets", () => {
  it("encodes and decodes RFC 5880 §4.1's layout", () => {
    // version 1, diag 0 | state Up (3<<6), F | mult 3 | length 24 | discriminators | 300 ms, 300 ms, 50 ms.
    const bytes = "20 d0 03 18  00000001 0a0b0c0d  000493e0 000493e0 0000c350";
    assert.equal(toHex(encodeBfd(upPacket)), toHex(hex(bytes)));
    assert.deepEqual(decodeBfd(hex(bytes)), { ok: true, packet: upPacket });
  });

  for (const [name, bytes, reason] of [
    ["a short packet", "20 d0 03 18 00000001", /fewer than 24/],
    ["version 0", "00 d0 03 18  00000001 0a0b0c0d  000493e0 000493e0 0000c350", /version 0/],
    ["a length field beyond the packet", "20 d0 03 30  00000001 0a0b0c0d  000493e0 000493e0 0000c350", /exceeds/],
    ["a length field below 24", "20 d0 03 10  00000001 0a0b0c0d  000493e0 000493e0 0000c350", /too small/],
    ["detect multiplier 0", "20 d0 00 18  00000001 0a0b0c0d  000493e0 000493e0 0000c350", /multiplier 0/],
    ["the multipoint bit", "20 d1 03 18  00000001 0a0b0c0d  000493e0 000493e0 0000c350", /multipoint/],
    ["my discriminator 0", "20 d0 03 18  00000000 0a0b0c0d  000493e0 000493e0 0000c350", /my discriminator 0/],
    ["authentication we did not configure", "20 d4 03 1a  00000001 0a0b0c0d  000493e0 000493e0 0000c350 0102", /authentication/],
  ] as const) {
    it(`discards ${name}`, () => {
      const result = decodeBfd(hex(bytes));
      assert.ok(!result.ok && reason.test(result.reason), JSON.stringify(result));
    });
  }
});

const a: BfdConfig = { myDiscriminator: 1, desiredMinTxMs: 100, requiredMinRxMs: 100, detectMultiplier: 3, passive: false };
const b: BfdConfig = { myDiscriminator: 2, desiredMinTxMs: 300, requiredMinRxMs: 200, detectMultiplier: 5, passive: false };

/** Delivers one packet from `from` to `to`, returning the receiver's new state and actions. */
function deliver(fromConfig: BfdConfig, from: BfdSessionState, toConfig: BfdConfig, to: BfdSessionState) {
  return bfdStep(toConfig, to, { type: "received", packet: packetToSend(fromConfig, from) });
}

describe("BFD state machine", () => {
  it("comes up with the three-way handshake and negotiates intervals", () => {
    let sa = initialBfdState();
    let sb = initialBfdState();
    assert.equal(packetToSend(a, sa).desiredMinTxInterval, 1_000_000, "not Up: no faster than 1 s");
    let r = deliver(a, sa, b, sb); // b: Down → Init
    sb = r.state;
    assert.deepEqual(r.actions.transition, { from: "Down", to: "Init", diagnostic: 0 });
    r = deliver(b, sb, a, sa); // a: Down + Init → Up
    sa = r.state;
    assert.deepEqual(r.actions.transition, { from: "Down", to: "Up", diagnostic: 0 });
    r = deliver(a, sa, b, sb); // b: Init + Up → Up
    sb = r.state;
    assert.equal(sb.state, "Up");
    // b heard a's packet sent while a was Up: a transmits every max(100, b's 200 rx) = 200 ms.
    r = deliver(b, sb, a, sa);
    sa = r.state;
    assert.equal(r.actions.txIntervalMs, 200);
    // a detects b's loss after b's multiplier 5 × max(a's rx 100, b's tx 300) = 1500 ms.
    assert.equal(r.actions.detectionMs, 1500);
    r = deliver(a, sa, b, sb);
    assert.equal(r.actions.txIntervalMs, 300, "b transmits every max(300, a's rx 100)");
    assert.equal(r.actions.detectionMs, 3 * 200, "a's multiplier × max(b's rx 200, a's tx 100)");
  });

  const up = (): BfdSessionState => ({ ...initialBfdState(), state: "Up", remoteDiscriminator: 2, remoteState: "Up", remoteMinRxUs: 200_000, remoteDesiredMinTxUs: 300_000, remoteDetectMultiplier: 5, heardFromPeer: true });
  const from = (state: BfdPacket["state"], extra: Partial<BfdPacket> = {}): BfdPacket => ({ ...packetToSend(b, { ...up(), state, remoteDiscriminator: 1 }), ...extra });

  it("goes Down when the detection time passes (diagnostic 1) and forgets the peer's discriminator", () => {
    const r = bfdStep(a, up(), { type: "detection-timeout" });
    assert.deepEqual(r.actions.transition, { from: "Up", to: "Down", diagnostic: 1 });
    assert.equal(r.state.remoteDiscriminator, 0);
    assert.equal(r.actions.detectionMs, 0);
    assert.equal(r.actions.txIntervalMs, 1000, "back to the slow rate");
  });

  it("goes Down when the peer says Down or AdminDown (diagnostic 3)", () => {
    assert.deepEqual(bfdStep(a, up(), { type: "received", packet: from("Down") }).actions.transition, { from: "Up", to: "Down", diagnostic: 3 });
    assert.deepEqual(bfdStep(a, up(), { type: "received", packet: from("AdminDown") }).actions.transition, { from: "Up", to: "Down", diagnostic: 3 });
  });

  it("answers a Poll with a Final at once", () => {
    const r = bfdStep(a, up(), { type: "received", packet: from("Up", { poll: true, desiredMinTxInterval: 50_000 }) });
    assert.equal(r.actions.sendNow, true);
    assert.equal(packetToSend(a, r.state).final, true);
    assert.equal(r.actions.detectionMs, 5 * 100, "the peer's new, faster rate counts at once");
  });

  it("ignores packets for another session, and a zero Your Discriminator in a packet that is not Down or AdminDown", () => {
    const s = up();
    assert.equal(bfdStep(a, s, { type: "received", packet: from("Down", { yourDiscriminator: 99 }) }).state, s);
    assert.equal(bfdStep(a, s, { type: "received", packet: from("Up", { yourDiscriminator: 0 }) }).state, s);
    assert.equal(bfdStep(a, s, { type: "received", packet: from("Init", { yourDiscriminator: 0 }) }).state, s);
  });

  it("a peer that re-created its session (Down, Your Discriminator 0, a new My Discriminator) is heard (§6.8.6)", () => {
    // FRR does this when bgpd re-registers a session with its local address once BGP is up.
    const r = bfdStep(a, up(), { type: "received", packet: from("Down", { yourDiscriminator: 0, myDiscriminator: 4242 }) });
    assert.deepEqual(r.actions.transition, { from: "Up", to: "Down", diagnostic: 3, peerRestarted: true });
    assert.equal(r.state.remoteDiscriminator, 4242);
    // The same session of the peer saying Down is a failure it saw, not a restart.
    assert.deepEqual(bfdStep(a, up(), { type: "received", packet: from("Down") }).actions.transition, { from: "Up", to: "Down", diagnostic: 3 });
    const init = bfdStep(a, initialBfdState(), { type: "received", packet: from("Down", { myDiscriminator: 1 }) }).state;
    assert.equal(init.state, "Init");
    const again = bfdStep(a, init, { type: "received", packet: from("Down", { yourDiscriminator: 0, myDiscriminator: 4242 }) });
    assert.equal(again.state.state, "Init");
    assert.equal(packetToSend(a, again.state).yourDiscriminator, 4242, "our next packet names the new session");
  });

  it("AdminDown sends diagnostic 7 and stops transmitting; leaving it starts over from Down", () => {
    let r = bfdStep(a, up(), { type: "admin", down: true });
    assert.deepEqual(r.actions.transition, { from: "Up", to: "AdminDown", diagnostic: 7 });
    assert.equal(r.actions.txIntervalMs, 0);
    r = bfdStep(a, r.state, { type: "admin", down: false });
    assert.equal(r.state.state, "Down");
  });

  it("a passive session stays silent until the peer speaks", () => {
    const passive = { ...a, passive: true };
    assert.equal(bfdStep(passive, initialBfdState(), { type: "admin", down: false }).actions.txIntervalMs, 0);
    const r = bfdStep(passive, initialBfdState(), { type: "received", packet: { ...from("Down"), yourDiscriminator: 0 } });
    assert.equal(r.state.state, "Init");
    assert.equal(r.actions.txIntervalMs, 1000);
  });
});

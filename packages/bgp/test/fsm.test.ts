// The RFC 4271 state machine, one row per (state, event): the next state and the actions, in order.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffSeconds, type FsmAction, type FsmConfig, type FsmEvent, type FsmState, initialState, resolveCollision, type SessionState, step } from "@bollard/bgp";

const active: FsmConfig = { passive: false, connectRetrySeconds: 2, maxBackoffSeconds: 60 };
const passive: FsmConfig = { ...active, passive: true };
const negotiated = { holdTime: 90, keepaliveTime: 30 };
const at = (state: SessionState, failures = 0): FsmState => ({ state, failures, stopped: false });
const stopAll: FsmAction[] = ["connect-retry", "hold", "keepalive", "idle-hold"].map((timer) => ({ type: "stop-timer", timer }) as FsmAction);

type Row = { name: string; config?: FsmConfig; from: FsmState; event: FsmEvent; to: SessionState; actions: FsmAction[]; failures?: number; stopped?: boolean };

const rows: Row[] = [
  // Starting.
  { name: "an active start dials", from: initialState(), event: { type: "ManualStart" }, to: "Connect", stopped: false, actions: [{ type: "start-timer", timer: "connect-retry", seconds: 2 }, { type: "connect" }] },
  { name: "a passive start waits in Active", config: passive, from: initialState(), event: { type: "ManualStart" }, to: "Active", stopped: false, actions: [{ type: "start-timer", timer: "connect-retry", seconds: 2 }] },
  { name: "Idle refuses an incoming connection", from: initialState(), event: { type: "TcpAccepted" }, to: "Idle", actions: [{ type: "drop-connection" }] },
  { name: "a stopped session does not restart on a stale idle-hold timer", from: initialState(), event: { type: "TimerExpired", timer: "idle-hold" }, to: "Idle", actions: [] },
  {
    name: "after a failure the idle-hold timer restarts the session",
    from: at("Idle", 2),
    event: { type: "TimerExpired", timer: "idle-hold" },
    to: "Connect",
    actions: [{ type: "start-timer", timer: "connect-retry", seconds: 8 }, { type: "connect" }],
  },
  // Connecting, with backoff.
  {
    name: "the connection comes up: OPEN sent, hold timer at 4 minutes",
    from: at("Connect"),
    event: { type: "TcpConnected" },
    to: "OpenSent",
    actions: [{ type: "stop-timer", timer: "connect-retry" }, { type: "send-open" }, { type: "start-timer", timer: "hold", seconds: 240 }],
  },
  {
    name: "a failed dial waits in Active with a longer retry",
    from: at("Connect", 1),
    event: { type: "TcpConnectionFails" },
    to: "Active",
    failures: 2,
    actions: [{ type: "start-timer", timer: "connect-retry", seconds: 4 }],
  },
  {
    name: "connect-retry in Active dials again",
    from: at("Active", 2),
    event: { type: "TimerExpired", timer: "connect-retry" },
    to: "Connect",
    actions: [{ type: "start-timer", timer: "connect-retry", seconds: 8 }, { type: "connect" }],
  },
  {
    name: "connect-retry in Connect abandons the hanging attempt and counts it",
    from: at("Connect", 3),
    event: { type: "TimerExpired", timer: "connect-retry" },
    to: "Connect",
    failures: 4,
    actions: [{ type: "start-timer", timer: "connect-retry", seconds: 32 }, { type: "drop-connection" }, { type: "connect" }],
  },
  {
    name: "a passive session never dials on connect-retry",
    config: passive,
    from: at("Active"),
    event: { type: "TimerExpired", timer: "connect-retry" },
    to: "Active",
    actions: [{ type: "start-timer", timer: "connect-retry", seconds: 2 }],
  },
  {
    name: "Active accepts the peer's connection",
    config: passive,
    from: at("Active"),
    event: { type: "TcpAccepted" },
    to: "OpenSent",
    actions: [{ type: "stop-timer", timer: "connect-retry" }, { type: "send-open" }, { type: "start-timer", timer: "hold", seconds: 240 }],
  },
  { name: "an UPDATE in Connect is an FSM error", from: at("Connect"), event: { type: "UpdateReceived" }, to: "Idle", failures: 1, actions: [{ type: "send-notification", code: 5, subcode: 0 }, { type: "drop-connection" }, ...stopAll, { type: "start-timer", timer: "idle-hold", seconds: 2 }] },
  // OPEN exchange and hold/keepalive negotiation.
  {
    name: "a valid OPEN: KEEPALIVE sent, negotiated hold and keepalive timers",
    from: at("OpenSent"),
    event: { type: "OpenReceived", holdTime: 9, keepaliveTime: 3 },
    to: "OpenConfirm",
    actions: [{ type: "send-keepalive" }, { type: "stop-timer", timer: "hold" }, { type: "start-timer", timer: "hold", seconds: 9 }, { type: "start-timer", timer: "keepalive", seconds: 3 }],
  },
  {
    name: "a hold time of zero runs no hold or keepalive timer",
    from: at("OpenSent"),
    event: { type: "OpenReceived", holdTime: 0, keepaliveTime: 0 },
    to: "OpenConfirm",
    actions: [{ type: "send-keepalive" }, { type: "stop-timer", timer: "hold" }],
  },
  {
    name: "a bad OPEN sends its NOTIFICATION and backs off",
    from: at("OpenSent", 1),
    event: { type: "MessageError", code: 2, subcode: 2 },
    to: "Idle",
    failures: 2,
    actions: [{ type: "send-notification", code: 2, subcode: 2 }, { type: "drop-connection" }, ...stopAll, { type: "start-timer", timer: "idle-hold", seconds: 4 }],
  },
  {
    name: "no OPEN within the hold time",
    from: at("OpenSent"),
    event: { type: "TimerExpired", timer: "hold" },
    to: "Idle",
    failures: 1,
    actions: [{ type: "send-notification", code: 4, subcode: 0 }, { type: "drop-connection" }, ...stopAll, { type: "start-timer", timer: "idle-hold", seconds: 2 }],
  },
  {
    name: "the connection drops in OpenSent: back to Active",
    from: at("OpenSent"),
    event: { type: "TcpConnectionFails" },
    to: "Active",
    failures: 1,
    actions: [{ type: "drop-connection" }, { type: "stop-timer", timer: "hold" }, { type: "start-timer", timer: "connect-retry", seconds: 2 }],
  },
  { name: "a KEEPALIVE before the OPEN is an FSM error (RFC 6608 subcode 1)", from: at("OpenSent"), event: { type: "KeepaliveReceived" }, to: "Idle", failures: 1, actions: [{ type: "send-notification", code: 5, subcode: 1 }, { type: "drop-connection" }, ...stopAll, { type: "start-timer", timer: "idle-hold", seconds: 2 }] },
  {
    name: "the peer's KEEPALIVE establishes the session",
    from: at("OpenConfirm", 3),
    event: { type: "KeepaliveReceived" },
    to: "Established",
    failures: 0,
    actions: [{ type: "start-timer", timer: "hold", seconds: 90 }, { type: "established" }],
  },
  {
    name: "OpenConfirm keeps sending KEEPALIVEs",
    from: at("OpenConfirm"),
    event: { type: "TimerExpired", timer: "keepalive" },
    to: "OpenConfirm",
    actions: [{ type: "send-keepalive" }, { type: "start-timer", timer: "keepalive", seconds: 30 }],
  },
  { name: "an UPDATE in OpenConfirm is an FSM error (subcode 2)", from: at("OpenConfirm"), event: { type: "UpdateReceived" }, to: "Idle", failures: 1, actions: [{ type: "send-notification", code: 5, subcode: 2 }, { type: "drop-connection" }, ...stopAll, { type: "start-timer", timer: "idle-hold", seconds: 2 }] },
  // Collision detection chose this connection to close.
  {
    name: "a collision dump in OpenConfirm sends Cease 7",
    from: at("OpenConfirm"),
    event: { type: "OpenCollisionDump" },
    to: "Idle",
    failures: 1,
    actions: [{ type: "send-notification", code: 6, subcode: 7 }, { type: "drop-connection" }, ...stopAll, { type: "start-timer", timer: "idle-hold", seconds: 2 }],
  },
  // Established.
  { name: "an UPDATE restarts the hold timer", from: at("Established"), event: { type: "UpdateReceived" }, to: "Established", actions: [{ type: "start-timer", timer: "hold", seconds: 90 }] },
  { name: "a KEEPALIVE restarts the hold timer", from: at("Established"), event: { type: "KeepaliveReceived" }, to: "Established", actions: [{ type: "start-timer", timer: "hold", seconds: 90 }] },
  { name: "sending an UPDATE restarts the keepalive timer", from: at("Established"), event: { type: "UpdateSent" }, to: "Established", actions: [{ type: "start-timer", timer: "keepalive", seconds: 30 }] },
  {
    name: "the hold timer expires",
    from: at("Established"),
    event: { type: "TimerExpired", timer: "hold" },
    to: "Idle",
    failures: 1,
    actions: [{ type: "send-notification", code: 4, subcode: 0 }, { type: "drop-connection" }, ...stopAll, { type: "session-down" }, { type: "start-timer", timer: "idle-hold", seconds: 2 }],
  },
  {
    name: "the peer's NOTIFICATION ends the session",
    from: at("Established"),
    event: { type: "NotificationReceived" },
    to: "Idle",
    failures: 1,
    actions: [{ type: "drop-connection" }, ...stopAll, { type: "session-down" }, { type: "start-timer", timer: "idle-hold", seconds: 2 }],
  },
  {
    name: "a malformed UPDATE that needs a reset",
    from: at("Established"),
    event: { type: "MessageError", code: 3, subcode: 1 },
    to: "Idle",
    failures: 1,
    actions: [{ type: "send-notification", code: 3, subcode: 1 }, { type: "drop-connection" }, ...stopAll, { type: "session-down" }, { type: "start-timer", timer: "idle-hold", seconds: 2 }],
  },
  { name: "an OPEN on an established session is an FSM error (subcode 3)", from: at("Established"), event: { type: "OpenReceived", holdTime: 90, keepaliveTime: 30 }, to: "Idle", failures: 1, actions: [{ type: "send-notification", code: 5, subcode: 3 }, { type: "drop-connection" }, ...stopAll, { type: "session-down" }, { type: "start-timer", timer: "idle-hold", seconds: 2 }] },
  // Stopping.
  {
    name: "ManualStop of an established session: Cease 2, no restart",
    from: at("Established", 0),
    event: { type: "ManualStop" },
    to: "Idle",
    stopped: true,
    actions: [{ type: "send-notification", code: 6, subcode: 2 }, { type: "drop-connection" }, ...stopAll, { type: "session-down" }],
  },
  { name: "ManualStop while dialling", from: at("Connect", 4), event: { type: "ManualStop" }, to: "Idle", stopped: true, failures: 0, actions: [{ type: "drop-connection" }, ...stopAll] },
];

describe("RFC 4271 FSM", () => {
  for (const row of rows) {
    it(`${row.from.state} + ${row.event.type}${"timer" in row.event ? `(${row.event.timer})` : ""}: ${row.name}`, () => {
      const { state, actions } = step(row.config ?? active, row.from, row.event, negotiated);
      assert.equal(state.state, row.to);
      assert.deepEqual(actions, row.actions);
      assert.equal(state.failures, row.failures ?? row.from.failures);
      assert.equal(state.stopped, row.stopped ?? row.from.stopped);
    });
  }

  it("backs off exponentially up to the ceiling", () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map((f) => backoffSeconds(active, f)), [2, 4, 8, 16, 32, 60, 60, 60]);
  });

  it("walks active open to Established and back down with every step legal", () => {
    let s = initialState();
    const seen: SessionState[] = [];
    for (const event of [
      { type: "ManualStart" },
      { type: "TcpConnected" },
      { type: "OpenReceived", holdTime: 3, keepaliveTime: 1 },
      { type: "KeepaliveReceived" },
      { type: "TimerExpired", timer: "keepalive" },
      { type: "UpdateReceived" },
      { type: "TcpConnectionFails" },
      { type: "TimerExpired", timer: "idle-hold" },
    ] as FsmEvent[]) {
      s = step(active, s, event, { holdTime: 3, keepaliveTime: 1 }).state;
      seen.push(s.state);
    }
    assert.deepEqual(seen, ["Connect", "OpenSent", "OpenConfirm", "Established", "Established", "Established", "Idle", "Connect"]);
  });
});

describe("collision detection (RFC 4271 §6.8)", () => {
  for (const [local, peer, keep] of [
    ["10.0.0.2", "10.0.0.1", "keep-outgoing"],
    ["10.0.0.1", "10.0.0.2", "keep-incoming"],
    ["9.255.255.255", "10.0.0.0", "keep-incoming"],
    ["255.0.0.0", "1.255.255.255", "keep-outgoing"],
  ] as const) {
    it(`local ${local}, peer ${peer}: ${keep}`, () => assert.equal(resolveCollision(local, peer), keep));
  }
});

// The RFC 4271 §8 finite state machine as a pure function: (configuration, state, event) → (state, actions).
// No sockets and no clocks: the session shell turns actions into TCP and timers, and timers and socket
// happenings into events. Deliberate simplifications, each allowed by the RFC's optional session attributes:
// no DelayOpen, no damping beyond the backoff below, and the collision rule in resolveCollision.
import { CeaseError, ErrorCode } from "../message/constants.ts";

export type SessionState = "Idle" | "Connect" | "Active" | "OpenSent" | "OpenConfirm" | "Established";

export type Timer = "connect-retry" | "hold" | "keepalive" | "idle-hold";

export type FsmConfig = {
  /** Never dial: wait in Active for the peer to connect (RFC 4271 PassiveTcpEstablishment, without dialling on ConnectRetryTimer). */
  passive: boolean;
  /** Seconds before the first reconnection (BGPPeer connectTime); doubled after each failure in a row. */
  connectRetrySeconds: number;
  /** The backoff's ceiling in seconds. */
  maxBackoffSeconds: number;
};

export type FsmState = {
  state: SessionState;
  /** Failed attempts since the last Established session (RFC 4271's ConnectRetryCounter). */
  failures: number;
  /** Stopped by ManualStop: no automatic restart. */
  stopped: boolean;
};

export type FsmEvent =
  | { type: "ManualStart" }
  | { type: "ManualStop" }
  | { type: "TimerExpired"; timer: Timer }
  /** The outgoing connection is up (RFC 4271 events 16/17). */
  | { type: "TcpConnected" }
  /** An incoming connection was accepted for this peer (event 17 on the passive side). */
  | { type: "TcpAccepted" }
  | { type: "TcpConnectionFails" }
  /** A valid OPEN, already checked against the peer's configuration, with the negotiated timers. */
  | { type: "OpenReceived"; holdTime: number; keepaliveTime: number }
  /** A message that needs a NOTIFICATION (header, OPEN or UPDATE error that resets the session). */
  | { type: "MessageError"; code: number; subcode: number; data?: Uint8Array }
  | { type: "NotificationReceived" }
  | { type: "KeepaliveReceived" }
  | { type: "UpdateReceived" }
  | { type: "RouteRefreshReceived" }
  /** This side sent an UPDATE, which counts as a keepalive (RFC 4271 §4.4). */
  | { type: "UpdateSent" }
  /** Collision detection (RFC 4271 §6.8) chose to close this connection. */
  | { type: "OpenCollisionDump" };

export type FsmAction =
  | { type: "connect" }
  | { type: "drop-connection" }
  | { type: "send-open" }
  | { type: "send-keepalive" }
  | { type: "send-notification"; code: number; subcode: number; data?: Uint8Array }
  | { type: "start-timer"; timer: Timer; seconds: number }
  | { type: "stop-timer"; timer: Timer }
  /** The session reached Established: send the whole table (then End-of-RIB). */
  | { type: "established" }
  /** An Established session ended: what was learnt from the peer is gone (graceful restart may keep it). */
  | { type: "session-down" };

/** RFC 4271 §8: the hold timer's "large value" while waiting for the peer's OPEN. */
export const OPEN_HOLD_SECONDS = 240;

export const initialState = (): FsmState => ({ state: "Idle", failures: 0, stopped: true });

/** RFC 6608: which FSM Error subcode reports an unexpected message in each state. */
const FSM_ERROR_SUBCODE: Partial<Record<SessionState, number>> = { OpenSent: 1, OpenConfirm: 2, Established: 3 };

export function backoffSeconds(config: FsmConfig, failures: number): number {
  return Math.min(config.maxBackoffSeconds, config.connectRetrySeconds * 2 ** Math.max(0, failures - 1));
}

const ALL_TIMERS: Timer[] = ["connect-retry", "hold", "keepalive", "idle-hold"];

export type Negotiated = { holdTime: number; keepaliveTime: number };

/**
 * One step. `negotiated` is what the OPEN exchange agreed (the shell keeps it between steps); the hold and
 * keepalive timers of OpenConfirm and Established use it.
 */
export function step(config: FsmConfig, s: FsmState, event: FsmEvent, negotiated: Negotiated = { holdTime: 0, keepaliveTime: 0 }): { state: FsmState; actions: FsmAction[] } {
  const actions: FsmAction[] = [];
  const to = (state: SessionState, patch: Partial<FsmState> = {}) => ({ state: { ...s, ...patch, state }, actions });
  const holdTimers = (n: Negotiated) => {
    if (n.holdTime === 0) return;
    actions.push({ type: "start-timer", timer: "hold", seconds: n.holdTime }, { type: "start-timer", timer: "keepalive", seconds: n.keepaliveTime });
  };
  /** Every way down except ManualStop: release the connection, count the failure, restart after the backoff. */
  const fail = (notification?: { code: number; subcode: number; data?: Uint8Array }) => {
    if (notification) {
      const { code, subcode, data } = notification;
      actions.push(data ? { type: "send-notification", code, subcode, data } : { type: "send-notification", code, subcode });
    }
    if (s.state !== "Idle") actions.push({ type: "drop-connection" });
    for (const timer of ALL_TIMERS) actions.push({ type: "stop-timer", timer });
    if (s.state === "Established") actions.push({ type: "session-down" });
    const failures = s.failures + 1;
    actions.push({ type: "start-timer", timer: "idle-hold", seconds: backoffSeconds(config, failures) });
    return to("Idle", { failures });
  };
  const start = () => {
    actions.push({ type: "start-timer", timer: "connect-retry", seconds: backoffSeconds(config, s.failures + 1) });
    if (config.passive) return to("Active", { stopped: false });
    actions.push({ type: "connect" });
    return to("Connect", { stopped: false });
  };
  const connected = () => {
    actions.push({ type: "stop-timer", timer: "connect-retry" }, { type: "send-open" }, { type: "start-timer", timer: "hold", seconds: OPEN_HOLD_SECONDS });
    return to("OpenSent");
  };
  const unexpected = () => fail({ code: ErrorCode.fsm, subcode: FSM_ERROR_SUBCODE[s.state] ?? 0 });

  if (event.type === "ManualStop") {
    if (s.state === "Idle") {
      actions.push({ type: "stop-timer", timer: "idle-hold" });
      return to("Idle", { stopped: true, failures: 0 });
    }
    if (s.state === "OpenSent" || s.state === "OpenConfirm" || s.state === "Established") {
      actions.push({ type: "send-notification", code: ErrorCode.cease, subcode: CeaseError.administrativeShutdown });
    }
    actions.push({ type: "drop-connection" });
    for (const timer of ALL_TIMERS) actions.push({ type: "stop-timer", timer });
    if (s.state === "Established") actions.push({ type: "session-down" });
    return to("Idle", { stopped: true, failures: 0 });
  }

  switch (s.state) {
    case "Idle":
      if (event.type === "ManualStart") return start();
      if (event.type === "TimerExpired" && event.timer === "idle-hold" && !s.stopped) return start();
      if (event.type === "TcpAccepted") actions.push({ type: "drop-connection" }); // refused while Idle
      return to("Idle");

    case "Connect":
    case "Active":
      switch (event.type) {
        case "ManualStart":
          return to(s.state);
        case "TimerExpired":
          if (event.timer === "connect-retry") {
            // A connection attempt that has not finished counts as a failure (the backoff grows).
            const failures = s.state === "Connect" ? s.failures + 1 : s.failures;
            actions.push({ type: "start-timer", timer: "connect-retry", seconds: backoffSeconds(config, failures + 1) });
            if (config.passive) return to("Active", { failures });
            if (s.state === "Connect") actions.push({ type: "drop-connection" });
            actions.push({ type: "connect" });
            return to("Connect", { failures });
          }
          return to(s.state); // a stale timer the shell could not cancel in time
        case "TcpConnected":
        case "TcpAccepted":
          return connected();
        case "TcpConnectionFails":
          if (s.state === "Connect") {
            // Keep listening; dial again when the connect-retry timer fires.
            actions.push({ type: "start-timer", timer: "connect-retry", seconds: backoffSeconds(config, s.failures + 1) });
            return to("Active", { failures: s.failures + 1 });
          }
          return fail();
        default:
          return unexpected();
      }

    case "OpenSent":
      switch (event.type) {
        case "ManualStart":
          return to(s.state);
        case "TimerExpired":
          if (event.timer === "hold") return fail({ code: ErrorCode.holdTimerExpired, subcode: 0 });
          return to(s.state); // a stale connect-retry or keepalive timer
        case "TcpConnectionFails":
          actions.push({ type: "drop-connection" }, { type: "stop-timer", timer: "hold" });
          actions.push({ type: "start-timer", timer: "connect-retry", seconds: backoffSeconds(config, s.failures + 1) });
          return to("Active", { failures: s.failures + 1 });
        case "OpenReceived":
          actions.push({ type: "send-keepalive" }, { type: "stop-timer", timer: "hold" });
          holdTimers(event);
          return to("OpenConfirm");
        case "MessageError":
          return fail(event);
        case "NotificationReceived":
          return fail();
        case "OpenCollisionDump":
          return fail({ code: ErrorCode.cease, subcode: CeaseError.connectionCollisionResolution });
        default:
          return unexpected();
      }

    case "OpenConfirm":
      switch (event.type) {
        case "ManualStart":
          return to(s.state);
        case "TimerExpired":
          if (event.timer === "hold") return fail({ code: ErrorCode.holdTimerExpired, subcode: 0 });
          if (event.timer === "keepalive") {
            actions.push({ type: "send-keepalive" }, { type: "start-timer", timer: "keepalive", seconds: negotiated.keepaliveTime });
          }
          return to(s.state);
        case "KeepaliveReceived":
          if (negotiated.holdTime > 0) actions.push({ type: "start-timer", timer: "hold", seconds: negotiated.holdTime });
          actions.push({ type: "established" });
          return to("Established", { failures: 0 });
        case "TcpConnectionFails":
        case "NotificationReceived":
          return fail();
        case "MessageError":
          return fail(event);
        case "OpenCollisionDump":
          return fail({ code: ErrorCode.cease, subcode: CeaseError.connectionCollisionResolution });
        default:
          return unexpected();
      }

    case "Established":
      switch (event.type) {
        case "ManualStart":
          return to(s.state);
        case "TimerExpired":
          if (event.timer === "hold") return fail({ code: ErrorCode.holdTimerExpired, subcode: 0 });
          if (event.timer === "keepalive") {
            actions.push({ type: "send-keepalive" }, { type: "start-timer", timer: "keepalive", seconds: negotiated.keepaliveTime });
          }
          return to(s.state);
        case "KeepaliveReceived":
        case "UpdateReceived":
        case "RouteRefreshReceived":
          if (negotiated.holdTime > 0) actions.push({ type: "start-timer", timer: "hold", seconds: negotiated.holdTime });
          return to(s.state);
        case "UpdateSent":
          if (negotiated.holdTime > 0) actions.push({ type: "start-timer", timer: "keepalive", seconds: negotiated.keepaliveTime });
          return to(s.state);
        case "TcpConnectionFails":
        case "NotificationReceived":
          return fail();
        case "MessageError":
          return fail(event);
        case "OpenCollisionDump":
          return fail({ code: ErrorCode.cease, subcode: CeaseError.connectionCollisionResolution });
        default:
          return unexpected();
      }
  }
}

/**
 * RFC 4271 §6.8: of two connections to the same peer, keep the one opened by the side with the higher BGP
 * Identifier (compared as unsigned 32-bit numbers).
 */
export function resolveCollision(localRouterId: string, peerRouterId: string): "keep-outgoing" | "keep-incoming" {
  const value = (id: string) => id.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
  return value(localRouterId) > value(peerRouterId) ? "keep-outgoing" : "keep-incoming";
}

// The BFD session state machine and timers of RFC 5880 §6.2, §6.8 (asynchronous mode, no echo, no demand), as
// a pure function. The shell sends what `send` says every `txIntervalMs` (jittered) and reports received packets
// and the detection timer's expiry.
import { BfdDiagnostic, type BfdPacket, type BfdState } from "./packet.ts";

export type BfdConfig = {
  myDiscriminator: number;
  /** BFDProfile transmitInterval, ms. */
  desiredMinTxMs: number;
  /** BFDProfile receiveInterval, ms. */
  requiredMinRxMs: number;
  /** BFDProfile detectMultiplier. */
  detectMultiplier: number;
  /** BFDProfile passiveMode: send nothing until the peer has sent something. */
  passive: boolean;
};

export type BfdSessionState = {
  state: BfdState;
  diagnostic: number;
  remoteDiscriminator: number;
  remoteState: BfdState;
  /** The peer's intervals, µs, and multiplier, from its last packet. */
  remoteMinRxUs: number;
  remoteDesiredMinTxUs: number;
  remoteDetectMultiplier: number;
  /** A Poll was received and must be answered with Final in the next packet. */
  answerFinal: boolean;
  heardFromPeer: boolean;
};

export type BfdEvent = { type: "received"; packet: BfdPacket } | { type: "detection-timeout" } | { type: "admin"; down: boolean };

export type BfdActions = {
  /** Set when the session changed state. */
  transition?: { from: BfdState; to: BfdState; diagnostic: number; peerRestarted?: true };
  /** The periodic transmission interval now (ms; 0: do not transmit). */
  txIntervalMs: number;
  /** The detection time now (ms; 0: no detection timer), restarted by every accepted packet. */
  detectionMs: number;
  /** Send one packet at once (a Final answering a Poll, or a state change the peer must hear). */
  sendNow: boolean;
};

/** RFC 5880 §6.8.3: while not Up, transmit no faster than once a second. */
const SLOW_TX_MS = 1000;

export const initialBfdState = (): BfdSessionState => ({
  state: "Down",
  diagnostic: BfdDiagnostic.none,
  remoteDiscriminator: 0,
  remoteState: "Down",
  remoteMinRxUs: 1,
  remoteDesiredMinTxUs: 0,
  remoteDetectMultiplier: 0,
  answerFinal: false,
  heardFromPeer: false,
});

/** The packet this end sends now (and clears a pending Final: call with the state the step returned). */
export function packetToSend(config: BfdConfig, s: BfdSessionState): BfdPacket {
  return {
    diagnostic: s.diagnostic,
    state: s.state,
    poll: false,
    final: s.answerFinal,
    controlPlaneIndependent: false,
    demand: false,
    detectMultiplier: config.detectMultiplier,
    myDiscriminator: config.myDiscriminator,
    yourDiscriminator: s.remoteDiscriminator,
    desiredMinTxInterval: (s.state === "Up" ? config.desiredMinTxMs : Math.max(config.desiredMinTxMs, SLOW_TX_MS)) * 1000,
    requiredMinRxInterval: config.requiredMinRxMs * 1000,
    requiredMinEchoRxInterval: 0,
  };
}

function timers(config: BfdConfig, s: BfdSessionState): Pick<BfdActions, "txIntervalMs" | "detectionMs"> {
  const desiredTx = s.state === "Up" ? config.desiredMinTxMs : Math.max(config.desiredMinTxMs, SLOW_TX_MS);
  // §6.8.7: no faster than the peer can receive; a peer asking for 0 wants no packets at all.
  const txIntervalMs = s.remoteMinRxUs === 0 || s.state === "AdminDown" || (config.passive && !s.heardFromPeer) ? 0 : Math.max(desiredTx, s.remoteMinRxUs / 1000);
  // §6.8.4: detection time = the peer's multiplier × the agreed interval it transmits at.
  const detectionMs = s.heardFromPeer && s.state !== "AdminDown" && s.state !== "Down" ? s.remoteDetectMultiplier * Math.max(config.requiredMinRxMs, s.remoteDesiredMinTxUs / 1000) : 0;
  return { txIntervalMs, detectionMs };
}

export function bfdStep(config: BfdConfig, s: BfdSessionState, event: BfdEvent): { state: BfdSessionState; actions: BfdActions } {
  let next: BfdSessionState = { ...s, answerFinal: false };
  let sendNow = false;
  // A Down from a new session of the peer (it lost its state and knows not ours): the path is alive, since its
  // packets arrive; a client may take that for no failure.
  let peerRestarted = false;
  const move = (to: BfdState, diagnostic: number) => {
    next = { ...next, state: to, diagnostic };
    sendNow = true;
  };
  switch (event.type) {
    case "admin":
      if (event.down) move("AdminDown", BfdDiagnostic.administrativelyDown);
      else if (s.state === "AdminDown") move("Down", BfdDiagnostic.none);
      break;
    case "detection-timeout":
      if (s.state === "Init" || s.state === "Up") {
        move("Down", BfdDiagnostic.controlDetectionTimeExpired);
        next.remoteDiscriminator = 0;
      }
      break;
    case "received": {
      const p = event.packet;
      // §6.8.6: a zero Your Discriminator is valid only in a packet whose State is Down or AdminDown (a peer that
      // has just (re)created its session does not know ours yet); a nonzero one must be ours.
      if (p.yourDiscriminator === 0 ? p.state !== "Down" && p.state !== "AdminDown" : p.yourDiscriminator !== config.myDiscriminator) {
        return { state: s, actions: { ...timers(config, s), sendNow: false } };
      }
      peerRestarted = p.yourDiscriminator === 0 && s.remoteDiscriminator !== 0 && p.myDiscriminator !== s.remoteDiscriminator;
      next = {
        ...next,
        remoteDiscriminator: p.myDiscriminator,
        remoteState: p.state,
        remoteMinRxUs: p.requiredMinRxInterval,
        remoteDesiredMinTxUs: p.desiredMinTxInterval,
        remoteDetectMultiplier: p.detectMultiplier,
        answerFinal: p.poll,
        heardFromPeer: true,
      };
      if (p.poll) sendNow = true;
      if (s.state === "AdminDown") break;
      if (p.state === "AdminDown") {
        if (s.state !== "Down") move("Down", BfdDiagnostic.neighborSignaledSessionDown);
      } else if (s.state === "Down") {
        if (p.state === "Down") move("Init", BfdDiagnostic.none);
        else if (p.state === "Init") move("Up", BfdDiagnostic.none);
      } else if (s.state === "Init") {
        if (p.state === "Init" || p.state === "Up") move("Up", BfdDiagnostic.none);
      } else if (p.state === "Down") {
        move("Down", BfdDiagnostic.neighborSignaledSessionDown);
      }
      break;
    }
  }
  const actions: BfdActions = { ...timers(config, next), sendNow };
  if (next.state !== s.state) {
    actions.transition = { from: s.state, to: next.state, diagnostic: next.diagnostic, ...(peerRestarted ? { peerRestarted: true as const } : {}) };
  }
  return { state: next, actions };
}

// BFD control packets (RFC 5880 §4.1), asynchronous mode, no authentication. Decoding never throws: a packet
// the RFC says to discard (§6.8.6) comes back with the reason, for a counter or a debug log.

export type BfdState = "AdminDown" | "Down" | "Init" | "Up";
export const BFD_STATES: readonly BfdState[] = ["AdminDown", "Down", "Init", "Up"];

/** RFC 5880 §4.1 diagnostic codes. */
export const BfdDiagnostic = {
  none: 0,
  controlDetectionTimeExpired: 1,
  echoFunctionFailed: 2,
  neighborSignaledSessionDown: 3,
  forwardingPlaneReset: 4,
  pathDown: 5,
  concatenatedPathDown: 6,
  administrativelyDown: 7,
  reverseConcatenatedPathDown: 8,
} as const;

export type BfdPacket = {
  diagnostic: number;
  state: BfdState;
  poll: boolean;
  final: boolean;
  controlPlaneIndependent: boolean;
  demand: boolean;
  detectMultiplier: number;
  myDiscriminator: number;
  yourDiscriminator: number;
  /** Microseconds, as on the wire. */
  desiredMinTxInterval: number;
  requiredMinRxInterval: number;
  requiredMinEchoRxInterval: number;
};

export const BFD_PACKET_LENGTH = 24;
/** RFC 5881: single-hop control packets go to UDP port 3784, from a source port in 49152..65535, with TTL 255. */
export const BFD_CONTROL_PORT = 3784;

export function encodeBfd(p: BfdPacket): Uint8Array {
  const b = new Uint8Array(BFD_PACKET_LENGTH);
  const view = new DataView(b.buffer);
  b[0] = (1 << 5) | (p.diagnostic & 0x1f);
  b[1] =
    (BFD_STATES.indexOf(p.state) << 6) |
    (p.poll ? 0x20 : 0) |
    (p.final ? 0x10 : 0) |
    (p.controlPlaneIndependent ? 0x08 : 0) |
    (p.demand ? 0x02 : 0);
  b[2] = p.detectMultiplier;
  b[3] = BFD_PACKET_LENGTH;
  view.setUint32(4, p.myDiscriminator);
  view.setUint32(8, p.yourDiscriminator);
  view.setUint32(12, p.desiredMinTxInterval);
  view.setUint32(16, p.requiredMinRxInterval);
  view.setUint32(20, p.requiredMinEchoRxInterval);
  return b;
}

/**
 * RFC 5880 §6.8.6's reception checks that need no session, in its order; the Your Discriminator checks need
 * the session and are bfdStep's.
 */
export function decodeBfd(bytes: Uint8Array): { ok: true; packet: BfdPacket } | { ok: false; reason: string } {
  if (bytes.length < BFD_PACKET_LENGTH) return { ok: false, reason: `${bytes.length} octets, fewer than ${BFD_PACKET_LENGTH}` };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = (bytes[0] as number) >> 5;
  if (version !== 1) return { ok: false, reason: `version ${version}` };
  const flags = bytes[1] as number;
  const length = bytes[3] as number;
  const authenticated = (flags & 0x04) !== 0;
  if (length < (authenticated ? 26 : 24)) return { ok: false, reason: `length field ${length} is too small` };
  if (length > bytes.length) return { ok: false, reason: `length field ${length} exceeds the ${bytes.length} octets received` };
  const detectMultiplier = bytes[2] as number;
  if (detectMultiplier === 0) return { ok: false, reason: "detect multiplier 0" };
  if ((flags & 0x01) !== 0) return { ok: false, reason: "multipoint bit set" };
  const myDiscriminator = view.getUint32(4);
  if (myDiscriminator === 0) return { ok: false, reason: "my discriminator 0" };
  if (authenticated) return { ok: false, reason: "authentication is not configured" };
  return {
    ok: true,
    packet: {
      diagnostic: (bytes[0] as number) & 0x1f,
      state: BFD_STATES[flags >> 6] as BfdState,
      poll: (flags & 0x20) !== 0,
      final: (flags & 0x10) !== 0,
      controlPlaneIndependent: (flags & 0x08) !== 0,
      demand: (flags & 0x02) !== 0,
      detectMultiplier,
      myDiscriminator,
      yourDiscriminator: view.getUint32(8),
      desiredMinTxInterval: view.getUint32(12),
      requiredMinRxInterval: view.getUint32(16),
      requiredMinEchoRxInterval: view.getUint32(20),
    },
  };
}

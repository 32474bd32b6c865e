// @bollard/bgp: a BGP-4 speaker's parts — the message codec, the RFC 4271 state machine, the TCP session.
export { canonicalPrefix, type Family, familyOf, formatAddress, parseAddress, type Prefix } from "./message/address.ts";
export { CommunityParseError, formatCommunity, formatLargeCommunity, type ParsedCommunity, parseCommunity } from "./message/community.ts";
export * from "./message/constants.ts";
export { checkHeader, decodeMessage } from "./message/decode.ts";
export { encodeMessage } from "./message/encode.ts";
export { ATTRIBUTE_RULES, type AttributeRule, BgpDecodeError, BgpEncodeError, describeNotification, type ErrorAction } from "./message/errors.ts";
export { FrameReader } from "./message/frame.ts";
export { buildOpen, IPV4_UNICAST, IPV6_UNICAST, type LocalOpen, type Negotiated, negotiate, type PeerExpectation } from "./message/open.ts";
export type * from "./message/types.ts";
export {
  backoffSeconds,
  type FsmAction,
  type FsmConfig,
  type FsmEvent,
  type FsmState,
  initialState,
  OPEN_HOLD_SECONDS,
  resolveCollision,
  type SessionState,
  step,
  type Timer,
} from "./fsm/fsm.ts";
export { DEFAULT_LOCAL_PREF, endOfRib, type OutboundContext, planUpdates, type Route, type UpdatePlan } from "./session/routes.ts";
export { BgpSession, type SessionEvents, type SessionOptions } from "./session/session.ts";
export { BFD_CONTROL_PORT, BFD_PACKET_LENGTH, BFD_STATES, BfdDiagnostic, type BfdPacket, type BfdState, decodeBfd, encodeBfd } from "./bfd/packet.ts";
export { type BfdActions, type BfdConfig, type BfdEvent, type BfdSessionState, bfdStep, initialBfdState, packetToSend } from "./bfd/fsm.ts";
export { BfdSession, type BfdSessionEvents, type BfdSessionOptions } from "./bfd/session.ts";
export { type BfdThreadEvents, BfdThreadSession } from "./bfd/thread.ts";

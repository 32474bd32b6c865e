// Errors, and RFC 7606's decisions about malformed attributes, as data.
import { AttributeCode, ErrorCode } from "./constants.ts";

/**
 * A received message that the session cannot survive: the NOTIFICATION to send (code, subcode, data) is part
 * of the error. Every other decoding problem is reported inside the decoded UPDATE (treat-as-withdraw,
 * attribute-discard), never thrown.
 */
export class BgpDecodeError extends Error {
  override name = "BgpDecodeError";
  readonly code: number;
  readonly subcode: number;
  readonly data: Uint8Array;
  constructor(code: number, subcode: number, reason: string, data: Uint8Array = new Uint8Array(0)) {
    super(`${reason} (NOTIFICATION ${code}/${subcode})`);
    this.code = code;
    this.subcode = subcode;
    this.data = data;
  }
}

/** Data that cannot be written as a BGP message (an AS beyond 32 bits, an UPDATE over 4096 octets, …). */
export class BgpEncodeError extends Error {
  override name = "BgpEncodeError";
}

export type ErrorAction = "treat-as-withdraw" | "attribute-discard" | "session-reset";

export type AttributeRule = {
  name: string;
  /** The Optional and Transitive flag bits the attribute must carry (RFC 4271 §5, and each attribute's RFC). */
  category: "well-known" | "optional-transitive" | "optional-non-transitive";
  /** What a malformed instance costs (RFC 7606 §7, RFC 8092 §6 for large communities). */
  onMalformed: ErrorAction;
  /** RFC 7606 §3(g): a repeated MP_REACH_NLRI/MP_UNREACH_NLRI resets the session; other repeats are dropped. */
  onRepeat: "discard-repeats" | "session-reset";
};

export const ATTRIBUTE_RULES: ReadonlyMap<number, AttributeRule> = new Map<number, AttributeRule>([
  [AttributeCode.origin, { name: "ORIGIN", category: "well-known", onMalformed: "treat-as-withdraw", onRepeat: "discard-repeats" }],
  [AttributeCode.asPath, { name: "AS_PATH", category: "well-known", onMalformed: "treat-as-withdraw", onRepeat: "discard-repeats" }],
  [AttributeCode.nextHop, { name: "NEXT_HOP", category: "well-known", onMalformed: "treat-as-withdraw", onRepeat: "discard-repeats" }],
  [AttributeCode.med, { name: "MULTI_EXIT_DISC", category: "optional-non-transitive", onMalformed: "treat-as-withdraw", onRepeat: "discard-repeats" }],
  [AttributeCode.localPref, { name: "LOCAL_PREF", category: "well-known", onMalformed: "treat-as-withdraw", onRepeat: "discard-repeats" }],
  [AttributeCode.atomicAggregate, { name: "ATOMIC_AGGREGATE", category: "well-known", onMalformed: "attribute-discard", onRepeat: "discard-repeats" }],
  [AttributeCode.aggregator, { name: "AGGREGATOR", category: "optional-transitive", onMalformed: "attribute-discard", onRepeat: "discard-repeats" }],
  [AttributeCode.communities, { name: "COMMUNITIES", category: "optional-transitive", onMalformed: "treat-as-withdraw", onRepeat: "discard-repeats" }],
  [AttributeCode.mpReach, { name: "MP_REACH_NLRI", category: "optional-non-transitive", onMalformed: "session-reset", onRepeat: "session-reset" }],
  [AttributeCode.mpUnreach, { name: "MP_UNREACH_NLRI", category: "optional-non-transitive", onMalformed: "session-reset", onRepeat: "session-reset" }],
  // RFC 6793 §6: between two 4-octet-AS speakers these must not appear; they are dropped, never acted on.
  [AttributeCode.as4Path, { name: "AS4_PATH", category: "optional-transitive", onMalformed: "attribute-discard", onRepeat: "discard-repeats" }],
  [AttributeCode.as4Aggregator, { name: "AS4_AGGREGATOR", category: "optional-transitive", onMalformed: "attribute-discard", onRepeat: "discard-repeats" }],
  [AttributeCode.largeCommunities, { name: "LARGE_COMMUNITY", category: "optional-transitive", onMalformed: "treat-as-withdraw", onRepeat: "discard-repeats" }],
]);

/** The NOTIFICATION's name, for logs and Events. */
export function describeNotification(code: number, subcode: number): string {
  const codes: Record<number, [string, Record<number, string>]> = {
    [ErrorCode.header]: ["Message Header Error", { 1: "Connection Not Synchronized", 2: "Bad Message Length", 3: "Bad Message Type" }],
    [ErrorCode.open]: [
      "OPEN Message Error",
      { 1: "Unsupported Version Number", 2: "Bad Peer AS", 3: "Bad BGP Identifier", 4: "Unsupported Optional Parameter", 6: "Unacceptable Hold Time", 7: "Unsupported Capability" },
    ],
    [ErrorCode.update]: [
      "UPDATE Message Error",
      {
        1: "Malformed Attribute List",
        2: "Unrecognized Well-known Attribute",
        3: "Missing Well-known Attribute",
        4: "Attribute Flags Error",
        5: "Attribute Length Error",
        6: "Invalid ORIGIN Attribute",
        8: "Invalid NEXT_HOP Attribute",
        9: "Optional Attribute Error",
        10: "Invalid Network Field",
        11: "Malformed AS_PATH",
      },
    ],
    [ErrorCode.holdTimerExpired]: ["Hold Timer Expired", {}],
    [ErrorCode.fsm]: ["Finite State Machine Error", {}],
    [ErrorCode.cease]: [
      "Cease",
      {
        1: "Maximum Number of Prefixes Reached",
        2: "Administrative Shutdown",
        3: "Peer De-configured",
        4: "Administrative Reset",
        5: "Connection Rejected",
        6: "Other Configuration Change",
        7: "Connection Collision Resolution",
        8: "Out of Resources",
      },
    ],
    [ErrorCode.routeRefresh]: ["ROUTE-REFRESH Message Error", { 1: "Invalid Message Length" }],
  };
  const [name, subcodes] = codes[code] ?? [`error code ${code}`, {}];
  const sub = subcodes[subcode];
  return sub ? `${name}: ${sub}` : subcode === 0 ? name : `${name}, subcode ${subcode}`;
}

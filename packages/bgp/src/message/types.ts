// BGP-4 messages as plain data. Decoding then encoding a well-formed message gives back its bytes, provided the
// sender used the canonical forms this codec writes (attributes in type-code order, extended length only when
// the value needs it).
import type { Prefix } from "./address.ts";

export type AfiSafi = { afi: number; safi: number };

export type Capability =
  | { kind: "multiprotocol"; afi: number; safi: number }
  | { kind: "route-refresh" }
  | {
      kind: "graceful-restart";
      /** RFC 4724 Restart State (R) bit: this speaker has just restarted. */
      restarting: boolean;
      /** Seconds the peer should keep this speaker's routes after the session goes down (12 bits). */
      restartTime: number;
      /** Families whose forwarding state survives a restart, with the Forwarding State (F) bit. */
      families: (AfiSafi & { forwardingPreserved: boolean })[];
    }
  | { kind: "four-octet-as"; asn: number }
  | { kind: "unknown"; code: number; value: Uint8Array };

export type OpenMessage = {
  type: "open";
  /** The 2-octet My Autonomous System field: the AS, or AS_TRANS (23456) when it needs 4 octets. */
  myAs: number;
  holdTime: number;
  /** BGP Identifier, as dotted quad. */
  routerId: string;
  capabilities: Capability[];
};

export type AsPathSegment = { type: "set" | "sequence" | "confed-sequence" | "confed-set"; asns: number[] };

export type UnknownAttribute = { flags: number; code: number; value: Uint8Array };

export type MpReach = AfiSafi & {
  /** One address; for IPv6 optionally a second, link-local one (RFC 2545). */
  nextHops: string[];
  nlri: Prefix[];
};
export type MpUnreach = AfiSafi & { withdrawn: Prefix[] };

export type LargeCommunity = [globalAdministrator: number, localData1: number, localData2: number];

export type PathAttributes = {
  origin?: "igp" | "egp" | "incomplete";
  asPath?: AsPathSegment[];
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: true;
  aggregator?: { asn: number; address: string };
  /** RFC 1997 communities as 32-bit numbers (high 16 bits the AS, low 16 bits the value). */
  communities?: number[];
  largeCommunities?: LargeCommunity[];
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  /** Attributes this codec does not interpret, kept as received (to be passed on if transitive). */
  unknown?: UnknownAttribute[];
};

/** What RFC 7606 made of a malformed attribute that did not need a session reset. */
export type AttributeProblem = {
  code: number;
  action: "treat-as-withdraw" | "attribute-discard";
  reason: string;
};

export type UpdateMessage = {
  type: "update";
  /** IPv4 unicast prefixes withdrawn (the Withdrawn Routes field). */
  withdrawn: Prefix[];
  attributes: PathAttributes;
  /** IPv4 unicast prefixes announced (the NLRI field). */
  nlri: Prefix[];
  /**
   * Set on decode when RFC 7606 says treat-as-withdraw: every prefix of this message (NLRI and MP_REACH_NLRI)
   * must be handled as withdrawn, whatever its attributes say.
   */
  treatAsWithdraw?: true;
  /** Set on decode when some attribute was malformed: what was wrong and what was done about it. */
  problems?: AttributeProblem[];
};

export type NotificationMessage = { type: "notification"; code: number; subcode: number; data: Uint8Array };

export type KeepaliveMessage = { type: "keepalive" };

export type RouteRefreshMessage = AfiSafi & {
  type: "route-refresh";
  /** RFC 7313 message subtype: 0 a plain refresh request, 1 beginning and 2 end of a route refresh. */
  subtype: number;
};

export type Message = OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

/** What the session negotiated that changes how UPDATEs are read and written. */
export type UpdateContext = {
  /** Both ends sent the RFC 6793 capability: AS numbers in AS_PATH and AGGREGATOR take 4 octets. */
  fourOctetAs: boolean;
  /** The peer is in another AS: a received LOCAL_PREF is discarded (RFC 7606 §7.5). */
  external: boolean;
};

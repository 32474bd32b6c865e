// What an OPEN offers and what two OPENs agree on (RFC 4271 §4.2 and §6.2, RFC 5492, RFC 6793, RFC 4724).
import { Afi, AS_TRANS, ErrorCode, OpenError, Safi } from "./constants.ts";
import { BgpDecodeError } from "./errors.ts";
import type { AfiSafi, Capability, OpenMessage } from "./types.ts";

export type LocalOpen = {
  asn: number;
  routerId: string;
  holdTime: number;
  families: AfiSafi[];
  /** RFC 4724: offered with this restart time (seconds); restarting sets the R bit after a speaker restart. */
  gracefulRestart?: { restartTime: number; restarting: boolean; forwardingPreserved: boolean };
};

export const IPV4_UNICAST: AfiSafi = { afi: Afi.ipv4, safi: Safi.unicast };
export const IPV6_UNICAST: AfiSafi = { afi: Afi.ipv6, safi: Safi.unicast };

export function buildOpen(local: LocalOpen): OpenMessage {
  const capabilities: Capability[] = [
    ...local.families.map((f): Capability => ({ kind: "multiprotocol", ...f })),
    { kind: "route-refresh" },
    { kind: "four-octet-as", asn: local.asn },
  ];
  if (local.gracefulRestart) {
    const gr = local.gracefulRestart;
    capabilities.push({
      kind: "graceful-restart",
      restarting: gr.restarting,
      restartTime: gr.restartTime,
      families: local.families.map((f) => ({ ...f, forwardingPreserved: gr.forwardingPreserved })),
    });
  }
  return { type: "open", myAs: local.asn > 0xffff ? AS_TRANS : local.asn, holdTime: local.holdTime, routerId: local.routerId, capabilities };
}

export type Negotiated = {
  /** The peer's AS: its 4-octet AS capability if sent, else the OPEN's My Autonomous System. */
  peerAsn: number;
  peerRouterId: string;
  /** The smaller of both hold times (0: no keepalives, no hold timer). */
  holdTime: number;
  /** A third of the hold time, or less if asked, in whole seconds (RFC 4271 §10). */
  keepaliveTime: number;
  fourOctetAs: boolean;
  routeRefresh: boolean;
  /** Families both ends offered. Without any multiprotocol capability, RFC 4760 means IPv4 unicast only. */
  families: AfiSafi[];
  /** The peer's graceful restart capability, if it sent one. */
  peerGracefulRestart?: Extract<Capability, { kind: "graceful-restart" }>;
};

export type PeerExpectation = {
  /** The AS the peer must have; "internal"/"external" as BGPPeer's dynamicASN. */
  asn: number | "internal" | "external";
  localAsn: number;
  localRouterId: string;
  /** Requested keepalive interval in seconds, if shorter than a third of the hold time. */
  keepaliveTime?: number;
};

/** Checks the peer's OPEN against what this end expects; a mismatch throws the NOTIFICATION to send. */
export function negotiate(local: OpenMessage, peer: OpenMessage, expect: PeerExpectation): Negotiated {
  const four = peer.capabilities.find((c) => c.kind === "four-octet-as");
  const peerAsn = four ? four.asn : peer.myAs;
  const asnOk =
    expect.asn === "internal" ? peerAsn === expect.localAsn : expect.asn === "external" ? peerAsn !== expect.localAsn : peerAsn === expect.asn;
  if (!asnOk || peerAsn === 0 || (four && peer.myAs !== AS_TRANS && peer.myAs !== four.asn)) {
    throw new BgpDecodeError(ErrorCode.open, OpenError.badPeerAs, `peer AS ${peerAsn}, expected ${expect.asn}`);
  }
  if (peer.routerId === "0.0.0.0" || (peer.routerId === expect.localRouterId && peerAsn === expect.localAsn)) {
    throw new BgpDecodeError(ErrorCode.open, OpenError.badBgpIdentifier, `peer BGP identifier ${peer.routerId}`);
  }
  const holdTime = Math.min(local.holdTime, peer.holdTime);
  const keepaliveTime = holdTime === 0 ? 0 : Math.max(1, Math.min(Math.floor(holdTime / 3), expect.keepaliveTime ?? Number.POSITIVE_INFINITY));
  const offered = (open: OpenMessage): AfiSafi[] => {
    const mp = open.capabilities.filter((c) => c.kind === "multiprotocol");
    return mp.length === 0 ? [{ afi: Afi.ipv4, safi: Safi.unicast }] : mp.map((c) => ({ afi: c.afi, safi: c.safi }));
  };
  const peerFamilies = offered(peer);
  const families = offered(local).filter((f) => peerFamilies.some((p) => p.afi === f.afi && p.safi === f.safi));
  const peerGracefulRestart = peer.capabilities.find((c) => c.kind === "graceful-restart");
  const negotiated: Negotiated = {
    peerAsn,
    peerRouterId: peer.routerId,
    holdTime,
    keepaliveTime,
    fourOctetAs: four !== undefined && local.capabilities.some((c) => c.kind === "four-octet-as"),
    routeRefresh: peer.capabilities.some((c) => c.kind === "route-refresh") && local.capabilities.some((c) => c.kind === "route-refresh"),
    families,
  };
  if (peerGracefulRestart) negotiated.peerGracefulRestart = peerGracefulRestart;
  return negotiated;
}

// A BGPPeer (MetalLB v0.16's fields and meaning), seen from one node, as the options of a BgpSession (pure).
// What this speaker cannot do yet is an error on the peer, never silently ignored: unnumbered sessions
// (interface), VRFs, BFD echo mode.
import { IPV4_UNICAST, IPV6_UNICAST, type SessionOptions } from "@bollard/bgp";
import { isIP, isIPv4 } from "node:net";
import type { BFDProfileObject, BGPPeerObject } from "./objects.ts";
import { sessionTtl } from "./tcp-socket.ts";

export type PeerSession = {
  options: SessionOptions;
  /** TCP MD5 key, from password or passwordSecret. */
  password?: string;
  /** The TTL of the session's packets (1 single-hop eBGP, 255 ebgpMultiHop, 0 the default for iBGP). */
  ttl: number;
  /** Single-hop BFD from the peer's bfdProfile: its Down takes the BGP session down. */
  bfd?: PeerBfd;
};

/** A BFD session's settings (BFDProfile fields, MetalLB's defaults) and the local address it runs from. */
export type PeerBfd = { localAddress: string; desiredMinTxMs: number; requiredMinRxMs: number; detectMultiplier: number; passive: boolean };

export type NodeView = { name: string; labels: Record<string, string>; addresses: string[] };

/** Secrets the speaker may read, by "namespace/name": type and decoded data. */
export type SecretView = ReadonlyMap<string, { type?: string; data: Record<string, string> }>;

const DURATION = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/;

/** A Go duration ("90s", "1m30s", "500ms") in seconds, or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text);
  if (!m || text === "" || m.slice(1).every((g) => g === undefined)) return undefined;
  const [h = "0", min = "0", s = "0", ms = "0"] = m.slice(1).map((g) => g ?? "0");
  return Number(h) * 3600 + Number(min) * 60 + Number(s) + Number(ms) / 1000;
}

export function peerSession(
  peer: BGPPeerObject,
  node: NodeView,
  secrets: SecretView,
  speakerNamespace: string,
  bfdProfiles: readonly BFDProfileObject[] = [],
): PeerSession | { error: string } {
  const spec = peer.spec ?? {};
  if (spec.interface) return { error: "spec.interface: unnumbered BGP sessions are not supported yet" };
  if (spec.vrf) return { error: "spec.vrf: sessions in a VRF are not supported yet" };
  if (!spec.peerAddress || isIP(spec.peerAddress) === 0) return { error: `spec.peerAddress: ${JSON.stringify(spec.peerAddress ?? "")} is not an IP address` };
  if (spec.myASN === undefined) return { error: "spec.myASN is required" };
  if ((spec.peerASN === undefined) === (spec.dynamicASN === undefined)) return { error: "exactly one of spec.peerASN and spec.dynamicASN" };
  if (spec.sourceAddress && isIP(spec.sourceAddress) === 0) return { error: `spec.sourceAddress: ${JSON.stringify(spec.sourceAddress)} is not an IP address` };
  const seconds = (field: "holdTime" | "keepaliveTime" | "connectTime", fallback: number | undefined) => {
    const text = spec[field];
    if (text === undefined) return fallback;
    const value = parseDuration(text);
    return value === undefined ? Number.NaN : Math.round(value);
  };
  const holdTime = seconds("holdTime", 90) as number;
  if (Number.isNaN(holdTime) || (holdTime !== 0 && holdTime < 3) || holdTime > 65535) return { error: `spec.holdTime: ${spec.holdTime} must be 0 or from 3s to 65535s` };
  const keepaliveTime = seconds("keepaliveTime", undefined);
  if (Number.isNaN(keepaliveTime) || (keepaliveTime !== undefined && holdTime !== 0 && keepaliveTime > holdTime)) {
    return { error: `spec.keepaliveTime: ${spec.keepaliveTime} must be a duration no longer than the hold time` };
  }
  const connectTime = seconds("connectTime", 5) as number;
  if (Number.isNaN(connectTime) || connectTime < 1) return { error: `spec.connectTime: ${spec.connectTime} is not a duration of at least 1s` };

  let password = spec.password || undefined;
  if (spec.passwordSecret?.name) {
    if (password) return { error: "spec.password and spec.passwordSecret are exclusive" };
    // As MetalLB: the Secret lives beside the speaker, so it needs no read access to Secrets elsewhere.
    const namespace = spec.passwordSecret.namespace || speakerNamespace;
    if (namespace !== speakerNamespace) return { error: `spec.passwordSecret: the Secret must be in the speaker's namespace ${speakerNamespace}, not ${namespace}` };
    const key = `${namespace}/${spec.passwordSecret.name}`;
    const secret = secrets.get(key);
    if (!secret) return { error: `spec.passwordSecret: Secret ${key} not found` };
    if (secret.type !== "kubernetes.io/basic-auth") return { error: `spec.passwordSecret: Secret ${key} must be of type kubernetes.io/basic-auth` };
    if (!secret.data.password) return { error: `spec.passwordSecret: Secret ${key} has no key "password"` };
    password = secret.data.password;
  }

  const routerId = spec.routerID ?? node.addresses.find((a) => isIPv4(a));
  if (!routerId || !isIPv4(routerId)) return { error: "spec.routerID: none given and the node has no IPv4 address to use" };
  const peerFamily = isIPv4(spec.peerAddress) ? IPV4_UNICAST : IPV6_UNICAST;
  const external = spec.dynamicASN ? spec.dynamicASN === "external" : spec.peerASN !== spec.myASN;
  const options: SessionOptions = {
    peerAddress: spec.peerAddress,
    peerPort: spec.peerPort ?? 179,
    localAsn: spec.myASN,
    peerAsn: spec.dynamicASN ?? (spec.peerASN as number),
    routerId,
    holdTime,
    connectRetrySeconds: connectTime,
    families: spec.dualStackAddressFamily ? [IPV4_UNICAST, IPV6_UNICAST] : [peerFamily],
  };
  if (keepaliveTime !== undefined) options.keepaliveTime = keepaliveTime;
  if (spec.sourceAddress) options.sourceAddress = spec.sourceAddress;
  if (spec.enableGracefulRestart) options.gracefulRestart = { restartTime: 120, restarting: false };
  const session: PeerSession = { options, ttl: sessionTtl(external, spec.ebgpMultiHop ?? false) };
  if (password) session.password = password;
  if (spec.bfdProfile) {
    const profile = bfdProfiles.find((p) => p.metadata.name === spec.bfdProfile);
    if (!profile) return { error: `spec.bfdProfile: BFDProfile ${spec.bfdProfile} not found` };
    if (profile.spec?.echoMode) return { error: `spec.bfdProfile: BFDProfile ${spec.bfdProfile} asks for echo mode, which is not supported yet` };
    if (spec.ebgpMultiHop) return { error: "spec.bfdProfile: BFD is single-hop here (RFC 5881); it cannot run with ebgpMultiHop" };
    const family = isIPv4(spec.peerAddress) ? 4 : 6;
    const localAddress = spec.sourceAddress ?? node.addresses.find((a) => isIP(a) === family);
    if (!localAddress) return { error: `spec.bfdProfile: the node has no IPv${family} address to run BFD from; set spec.sourceAddress` };
    const p = profile.spec ?? {};
    session.bfd = {
      localAddress,
      desiredMinTxMs: p.transmitInterval ?? 300,
      requiredMinRxMs: p.receiveInterval ?? 300,
      detectMultiplier: p.detectMultiplier ?? 3,
      passive: p.passiveMode ?? false,
    };
  }
  return session;
}

// Answers ARP requests and neighbor solicitations on one interface for the addresses it currently
// owns there. The answering runs in the addon's liveness thread (native/liveness.c), from a table this
// module replaces on every change (`setOwned`): a stalled event loop does not stop the answers, and
// giving an address up (one table swap) stops them at once. Gratuitous frames are sent from here.
import type { Logger } from "@bollard/core";
import { canonicalIP, macToBytes } from "../l2/address-bytes.ts";
import { ALL_NODES_IPV6, ArpOperation, BROADCAST_MAC, encodeArpFrame, encodeNdpFrame, multicastMac, solicitedNodeAddress } from "../l2/frames.ts";
import type { LinkFacts } from "../l2/packet-socket.ts";
import { type NativeResponder, openNativeResponder } from "../liveness/liveness.ts";
import type { AnnouncerMetrics } from "./metrics.ts";

const ZERO_MAC = "00:00:00:00:00:00";

export interface InterfaceResponder {
  readonly link: LinkFacts;
  /** The addresses this interface answers for from now on. */
  setOwned(ips: ReadonlySet<string>): void;
  /** Joins the solicited-node groups of these IPv6 addresses and leaves the others. */
  setSolicitedNodeGroups(ipv6Addresses: Iterable<string>): void;
  /** One gratuitous ARP (request + reply) or unsolicited NA with Override for `ip`. */
  sendGratuitous(ip: string): void;
  /** Adds what the thread counted since the last call to the Prometheus counters. */
  syncMetrics(): void;
  close(): void;
}

export interface ResponderOptions {
  link: LinkFacts;
  metrics: AnnouncerMetrics;
  logger: Logger;
}

export function openInterfaceResponder(options: ResponderOptions): InterfaceResponder {
  const { link, metrics, logger } = options;
  const mac = link.mac as string;
  const ifname = link.name;
  const log = logger.child({ interface: ifname });
  const native: NativeResponder = openNativeResponder(link.index, macToBytes(mac));

  const send = (family: 4 | 6, frame: Buffer): boolean => {
    try {
      native.send(family, frame);
      return true;
    } catch (err) {
      metrics.sendErrors.inc({ interface: ifname });
      log.warn({ err }, "sending a frame failed");
      return false;
    }
  };

  // The thread's counters only grow (per address: since it became owned); Prometheus gets the difference.
  const seen = new Map<string, number>();
  const addDelta = (key: string, now: number, inc: (by: number) => void) => {
    const before = seen.get(key) ?? 0;
    const by = now >= before ? now - before : now;
    if (by > 0) inc(by);
    seen.set(key, now);
  };
  let closed = false;
  const syncMetrics = () => {
    if (closed) return;
    const counters = native.counters();
    addDelta("requests4", counters.requests[0], (by) => metrics.requestsReceived.inc({ family: "4", interface: ifname }, by));
    addDelta("requests6", counters.requests[1], (by) => metrics.requestsReceived.inc({ family: "6", interface: ifname }, by));
    addDelta("sendErrors", counters.sendErrors, (by) => metrics.sendErrors.inc({ interface: ifname }, by));
    for (const [family, reason, count] of counters.malformed) {
      addDelta(`malformed/${family}/${reason}`, count, (by) => metrics.malformedFrames.inc({ family: String(family), reason }, by));
    }
    const owned = new Set<string>();
    for (const [address, count] of counters.responses) {
      const ip = canonicalIP(address) ?? address;
      owned.add(`responses/${ip}`);
      addDelta(`responses/${ip}`, count, (by) => metrics.responsesSent.inc({ family: ip.includes(":") ? "6" : "4", interface: ifname, ip }, by));
    }
    for (const key of seen.keys()) if (key.startsWith("responses/") && !owned.has(key)) seen.delete(key);
  };

  const joined = new Set<string>();

  return {
    link,
    setOwned(ips) {
      syncMetrics(); // counts of addresses about to go are read before the table forgets them
      native.setOwned(ips);
    },
    setSolicitedNodeGroups(ipv6Addresses) {
      const wanted = new Set<string>();
      for (const ip of ipv6Addresses) wanted.add(multicastMac(solicitedNodeAddress(ip)));
      for (const group of wanted) {
        if (joined.has(group)) continue;
        native.setMembership(macToBytes(group), true);
        joined.add(group);
      }
      for (const group of joined) {
        if (wanted.has(group)) continue;
        native.setMembership(macToBytes(group), false);
        joined.delete(group);
      }
    },
    sendGratuitous(ip) {
      if (ip.includes(":")) {
        const advertisement = encodeNdpFrame({
          destination: multicastMac(ALL_NODES_IPV6),
          source: mac,
          sourceIp: ip,
          destinationIp: ALL_NODES_IPV6,
          message: { type: "advertisement", targetIp: ip, router: false, solicited: false, override: true, targetLinkAddress: mac },
        });
        if (send(6, advertisement)) metrics.gratuitousSent.inc({ family: "6", interface: ifname, ip });
        return;
      }
      // Both forms: some hosts update their cache from the request, others only from a reply.
      const request = encodeArpFrame({
        destination: BROADCAST_MAC,
        source: mac,
        arp: { operation: ArpOperation.request, senderMac: mac, senderIp: ip, targetMac: ZERO_MAC, targetIp: ip },
      });
      const reply = encodeArpFrame({
        destination: BROADCAST_MAC,
        source: mac,
        arp: { operation: ArpOperation.reply, senderMac: mac, senderIp: ip, targetMac: BROADCAST_MAC, targetIp: ip },
      });
      if (send(4, request)) metrics.gratuitousSent.inc({ family: "4", interface: ifname, ip });
      if (send(4, reply)) metrics.gratuitousSent.inc({ family: "4", interface: ifname, ip });
    },
    syncMetrics,
    close() {
      syncMetrics();
      closed = true;
      native.close();
    },
  };
}

// Answers ARP requests and neighbor solicitations on one interface for the addresses it currently
// owns there. It reads the owned set through a getter on every frame, so giving an address up (one
// reference swap in the announcer) stops the answers at once.
import type { Logger } from "@bollard/core";
import { macToBytes } from "../l2/address-bytes.ts";
import { arpRequestFilter, neighborSolicitationFilter } from "../l2/bpf.ts";
import {
  ALL_NODES_IPV6,
  ArpOperation,
  BROADCAST_MAC,
  decodeArpFrame,
  decodeNdpFrame,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV6,
  encodeArpFrame,
  encodeNdpFrame,
  multicastMac,
  solicitedNodeAddress,
} from "../l2/frames.ts";
import { type LinkFacts, openPacketSocket, type PacketSocket } from "../l2/packet-socket.ts";
import type { AnnouncerMetrics } from "./metrics.ts";

const ZERO_MAC = "00:00:00:00:00:00";

export interface InterfaceResponder {
  readonly link: LinkFacts;
  /** Joins the solicited-node groups of these IPv6 addresses and leaves the others. */
  setSolicitedNodeGroups(ipv6Addresses: Iterable<string>): void;
  /** One gratuitous ARP (request + reply) or unsolicited NA with Override for `ip`. */
  sendGratuitous(ip: string): void;
  close(): void;
}

export interface ResponderOptions {
  link: LinkFacts;
  /** The addresses this interface answers for right now. */
  owned(): ReadonlySet<string>;
  metrics: AnnouncerMetrics;
  logger: Logger;
}

export function openInterfaceResponder(options: ResponderOptions): InterfaceResponder {
  const { link, owned, metrics, logger } = options;
  const mac = link.mac as string;
  const ifname = link.name;
  const log = logger.child({ interface: ifname });
  const onError = (err: unknown) => log.error({ err }, "frame handler failed");

  const send = (socket: PacketSocket, frame: Buffer): boolean => {
    try {
      socket.send(frame);
      return true;
    } catch (err) {
      metrics.sendErrors.inc({ interface: ifname });
      log.warn({ err }, "sending a frame failed");
      return false;
    }
  };

  const arp: PacketSocket = openPacketSocket({
    ifindex: link.index,
    ethertype: ETHERTYPE_ARP,
    filter: arpRequestFilter,
    onError,
    onFrame(frame) {
      const decoded = decodeArpFrame(frame);
      if (!decoded.ok) {
        metrics.malformedFrames.inc({ family: "4", reason: decoded.reason });
        return;
      }
      const { ethernet, arp: request } = decoded.value;
      if (request.operation !== ArpOperation.request) return;
      metrics.requestsReceived.inc({ family: "4", interface: ifname });
      if (ethernet.destination !== BROADCAST_MAC && ethernet.destination !== mac) return;
      // Someone else's gratuitous ARP for the address is an announcement, not a question.
      if (request.senderIp === request.targetIp) return;
      if (!owned().has(request.targetIp)) return;
      const reply = encodeArpFrame({
        destination: request.senderMac,
        source: mac,
        arp: { operation: ArpOperation.reply, senderMac: mac, senderIp: request.targetIp, targetMac: request.senderMac, targetIp: request.senderIp },
      });
      if (send(arp, reply)) metrics.responsesSent.inc({ family: "4", interface: ifname, ip: request.targetIp });
    },
  });

  let ndp: PacketSocket;
  try {
    ndp = openPacketSocket({
      ifindex: link.index,
      ethertype: ETHERTYPE_IPV6,
      filter: neighborSolicitationFilter,
      onError,
      onFrame(frame) {
        const decoded = decodeNdpFrame(frame);
        if (!decoded.ok) {
          metrics.malformedFrames.inc({ family: "6", reason: decoded.reason });
          return;
        }
        const { ethernet, sourceIp, destinationIp, message } = decoded.value;
        if (message.type !== "solicitation") return;
        metrics.requestsReceived.inc({ family: "6", interface: ifname });
        const { targetIp } = message;
        if (!owned().has(targetIp)) return;
        const group = solicitedNodeAddress(targetIp);
        const toGroup = destinationIp === group && ethernet.destination === multicastMac(group);
        const toUs = destinationIp === targetIp && ethernet.destination === mac;
        if (!toGroup && !toUs) return;
        // Duplicate address detection (from ::) is answered to all nodes, unsolicited (RFC 4861 §7.2.4).
        const dad = sourceIp === "::";
        const reply = encodeNdpFrame({
          destination: dad ? multicastMac(ALL_NODES_IPV6) : (message.sourceLinkAddress ?? ethernet.source),
          source: mac,
          sourceIp: targetIp,
          destinationIp: dad ? ALL_NODES_IPV6 : sourceIp,
          message: { type: "advertisement", targetIp, router: false, solicited: !dad, override: true, targetLinkAddress: mac },
        });
        if (send(ndp, reply)) metrics.responsesSent.inc({ family: "6", interface: ifname, ip: targetIp });
      },
    });
  } catch (err) {
    arp.close();
    throw err;
  }

  const joined = new Set<string>();

  return {
    link,
    setSolicitedNodeGroups(ipv6Addresses) {
      const wanted = new Set<string>();
      for (const ip of ipv6Addresses) wanted.add(multicastMac(solicitedNodeAddress(ip)));
      for (const group of wanted) {
        if (joined.has(group)) continue;
        ndp.setMembership(macToBytes(group), true);
        joined.add(group);
      }
      for (const group of joined) {
        if (wanted.has(group)) continue;
        ndp.setMembership(macToBytes(group), false);
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
        if (send(ndp, advertisement)) metrics.gratuitousSent.inc({ family: "6", interface: ifname, ip });
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
      if (send(arp, request)) metrics.gratuitousSent.inc({ family: "4", interface: ifname, ip });
      if (send(arp, reply)) metrics.gratuitousSent.inc({ family: "4", interface: ifname, ip });
    },
    close() {
      arp.close();
      ndp.close();
    },
  };
}

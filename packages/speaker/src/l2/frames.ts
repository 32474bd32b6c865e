// Ethernet + ARP and Ethernet + IPv6 + ICMPv6 Neighbor Solicitation/Advertisement codecs.
// Decoders never throw: a frame off the wire is untrusted, and a malformed one must not stop the
// receive loop, so they return a typed result naming what was wrong.
import { formatIPv4, formatIPv6, formatMac, ipv4ToBytes, ipv6ToBytes, macToBytes } from "./address-bytes.ts";

export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
export const BROADCAST_MAC = "ff:ff:ff:ff:ff:ff";
export const ALL_NODES_IPV6 = "ff02::1";
/** Ethernet minimum without the FCS: the NIC adds 4 bytes of FCS, veth and bridges do not pad. */
export const MIN_FRAME_LENGTH = 60;

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: MalformedReason; detail: string };
export type MalformedReason = "truncated" | "not-arp" | "not-ipv6" | "unsupported" | "invalid" | "bad-checksum";

const malformed = (reason: MalformedReason, detail: string): { ok: false; reason: MalformedReason; detail: string } => ({
  ok: false,
  reason,
  detail,
});

export interface EthernetHeader {
  destination: string;
  source: string;
  ethertype: number;
}

export const ArpOperation = { request: 1, reply: 2 } as const;

export interface ArpPacket {
  operation: 1 | 2;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

export interface ArpFrame {
  ethernet: EthernetHeader;
  arp: ArpPacket;
}

function ethernetHeader(frame: Uint8Array): EthernetHeader {
  return {
    destination: formatMac(frame.subarray(0, 6)),
    source: formatMac(frame.subarray(6, 12)),
    ethertype: ((frame[12] as number) << 8) | (frame[13] as number),
  };
}

function writeEthernet(frame: Buffer, header: EthernetHeader): void {
  macToBytes(header.destination).copy(frame, 0);
  macToBytes(header.source).copy(frame, 6);
  frame.writeUInt16BE(header.ethertype, 12);
}

export function decodeArpFrame(frame: Uint8Array): Decoded<ArpFrame> {
  if (frame.length < 14 + 28) return malformed("truncated", `${frame.length} bytes, an ARP frame needs 42`);
  const ethernet = ethernetHeader(frame);
  if (ethernet.ethertype !== ETHERTYPE_ARP) return malformed("not-arp", `ethertype 0x${ethernet.ethertype.toString(16)}`);
  const view = new DataView(frame.buffer, frame.byteOffset + 14, 28);
  const hardwareType = view.getUint16(0);
  const protocolType = view.getUint16(2);
  if (hardwareType !== 1 || protocolType !== 0x0800 || view.getUint8(4) !== 6 || view.getUint8(5) !== 4) {
    return malformed("unsupported", `ARP htype ${hardwareType} ptype 0x${protocolType.toString(16)}: only Ethernet/IPv4`);
  }
  const operation = view.getUint16(6);
  if (operation !== 1 && operation !== 2) return malformed("unsupported", `ARP operation ${operation}`);
  return {
    ok: true,
    value: {
      ethernet,
      arp: {
        operation,
        senderMac: formatMac(frame.subarray(22, 28)),
        senderIp: formatIPv4(frame, 28),
        targetMac: formatMac(frame.subarray(32, 38)),
        targetIp: formatIPv4(frame, 38),
      },
    },
  };
}

export function encodeArpFrame(input: { destination: string; source: string; arp: ArpPacket }): Buffer {
  const frame = Buffer.alloc(MIN_FRAME_LENGTH);
  writeEthernet(frame, { destination: input.destination, source: input.source, ethertype: ETHERTYPE_ARP });
  frame.writeUInt16BE(1, 14);
  frame.writeUInt16BE(0x0800, 16);
  frame[18] = 6;
  frame[19] = 4;
  frame.writeUInt16BE(input.arp.operation, 20);
  macToBytes(input.arp.senderMac).copy(frame, 22);
  ipv4ToBytes(input.arp.senderIp).copy(frame, 28);
  macToBytes(input.arp.targetMac).copy(frame, 32);
  ipv4ToBytes(input.arp.targetIp).copy(frame, 38);
  return frame;
}

export interface NeighborSolicitation {
  type: "solicitation";
  targetIp: string;
  /** Source link-layer address option; absent when the source is :: (duplicate address detection). */
  sourceLinkAddress: string | null;
}

export interface NeighborAdvertisement {
  type: "advertisement";
  targetIp: string;
  router: boolean;
  solicited: boolean;
  override: boolean;
  targetLinkAddress: string | null;
}

export interface NdpFrame {
  ethernet: EthernetHeader;
  sourceIp: string;
  destinationIp: string;
  hopLimit: number;
  message: NeighborSolicitation | NeighborAdvertisement;
}

const ICMPV6 = 58;
const NS = 135;
const NA = 136;
const OPTION_SOURCE_LINK_ADDRESS = 1;
const OPTION_TARGET_LINK_ADDRESS = 2;

/** The Internet checksum of the ICMPv6 message over the IPv6 pseudo-header (RFC 4443 §2.3). */
export function icmpv6Checksum(source: Uint8Array, destination: Uint8Array, message: Uint8Array): number {
  let sum = 0;
  const add = (bytes: Uint8Array) => {
    for (let i = 0; i + 1 < bytes.length; i += 2) sum += ((bytes[i] as number) << 8) | (bytes[i + 1] as number);
    if (bytes.length % 2 === 1) sum += (bytes[bytes.length - 1] as number) << 8;
  };
  add(source);
  add(destination);
  sum += message.length >>> 16;
  sum += message.length & 0xffff;
  sum += ICMPV6;
  add(message);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Decodes an NS or NA and checks it as RFC 4861 §7.1 asks a receiver to. */
export function decodeNdpFrame(frame: Uint8Array): Decoded<NdpFrame> {
  if (frame.length < 14 + 40 + 24) return malformed("truncated", `${frame.length} bytes, an NS/NA frame needs 78`);
  const ethernet = ethernetHeader(frame);
  if (ethernet.ethertype !== ETHERTYPE_IPV6) return malformed("not-ipv6", `ethertype 0x${ethernet.ethertype.toString(16)}`);
  const ip = new DataView(frame.buffer, frame.byteOffset + 14, 40);
  if (ip.getUint8(0) >> 4 !== 6) return malformed("invalid", `IP version ${ip.getUint8(0) >> 4}`);
  const payloadLength = ip.getUint16(4);
  if (ip.getUint8(6) !== ICMPV6) return malformed("unsupported", `next header ${ip.getUint8(6)}, not ICMPv6`);
  const hopLimit = ip.getUint8(7);
  if (54 + payloadLength > frame.length) {
    return malformed("truncated", `payload length ${payloadLength} runs past the ${frame.length}-byte frame`);
  }
  if (payloadLength < 24) return malformed("invalid", `ICMPv6 length ${payloadLength} is below 24`);
  const source = frame.subarray(22, 38);
  const destination = frame.subarray(38, 54);
  const icmp = frame.subarray(54, 54 + payloadLength);
  const type = icmp[0] as number;
  if (type !== NS && type !== NA) return malformed("unsupported", `ICMPv6 type ${type}`);
  if (icmp[1] !== 0) return malformed("invalid", `ICMPv6 code ${icmp[1]}`);
  if (hopLimit !== 255) return malformed("invalid", `hop limit ${hopLimit}: NDP from off-link`);
  if (icmpv6Checksum(source, destination, icmp) !== 0) return malformed("bad-checksum", "ICMPv6 checksum does not match");
  const target = icmp.subarray(8, 24);
  if (target[0] === 0xff) return malformed("invalid", "target address is multicast");
  let sourceLinkAddress: string | null = null;
  let targetLinkAddress: string | null = null;
  for (let at = 24; at < icmp.length; ) {
    if (at + 2 > icmp.length) return malformed("truncated", "option header cut short");
    const optionType = icmp[at] as number;
    const optionLength = (icmp[at + 1] as number) * 8;
    if (optionLength === 0) return malformed("invalid", "option with length 0");
    if (at + optionLength > icmp.length) return malformed("truncated", `option ${optionType} runs past the message`);
    if (optionLength === 8 && optionType === OPTION_SOURCE_LINK_ADDRESS) sourceLinkAddress = formatMac(icmp.subarray(at + 2, at + 8));
    if (optionLength === 8 && optionType === OPTION_TARGET_LINK_ADDRESS) targetLinkAddress = formatMac(icmp.subarray(at + 2, at + 8));
    at += optionLength;
  }
  const sourceIp = formatIPv6(source);
  const destinationIp = formatIPv6(destination);
  const targetIp = formatIPv6(target);
  let message: NeighborSolicitation | NeighborAdvertisement;
  if (type === NS) {
    if (sourceIp === "::" && (!destinationIp.startsWith("ff02::1:ff") || sourceLinkAddress !== null)) {
      return malformed("invalid", "NS from :: must go to a solicited-node group without a source link-layer option");
    }
    message = { type: "solicitation", targetIp, sourceLinkAddress };
  } else {
    const flags = icmp[4] as number;
    const solicited = (flags & 0x40) !== 0;
    if (solicited && destination[0] === 0xff) return malformed("invalid", "solicited NA sent to multicast");
    message = {
      type: "advertisement",
      targetIp,
      router: (flags & 0x80) !== 0,
      solicited,
      override: (flags & 0x20) !== 0,
      targetLinkAddress,
    };
  }
  return { ok: true, value: { ethernet, sourceIp, destinationIp, hopLimit, message } };
}

/** Encodes an NS or NA with hop limit 255, the checksum filled in, padded to the Ethernet minimum. */
export function encodeNdpFrame(input: {
  destination: string;
  source: string;
  sourceIp: string;
  destinationIp: string;
  message: NeighborSolicitation | NeighborAdvertisement;
}): Buffer {
  const { message } = input;
  const linkAddress = message.type === "solicitation" ? message.sourceLinkAddress : message.targetLinkAddress;
  const icmpLength = 24 + (linkAddress === null ? 0 : 8);
  const frame = Buffer.alloc(Math.max(MIN_FRAME_LENGTH, 54 + icmpLength));
  writeEthernet(frame, { destination: input.destination, source: input.source, ethertype: ETHERTYPE_IPV6 });
  frame.writeUInt32BE(0x60000000, 14);
  frame.writeUInt16BE(icmpLength, 18);
  frame[20] = ICMPV6;
  frame[21] = 255;
  const source = ipv6ToBytes(input.sourceIp);
  const destination = ipv6ToBytes(input.destinationIp);
  source.copy(frame, 22);
  destination.copy(frame, 38);
  const icmp = frame.subarray(54, 54 + icmpLength);
  if (message.type === "solicitation") {
    icmp[0] = NS;
  } else {
    icmp[0] = NA;
    icmp[4] = (message.router ? 0x80 : 0) | (message.solicited ? 0x40 : 0) | (message.override ? 0x20 : 0);
  }
  ipv6ToBytes(message.targetIp).copy(icmp, 8);
  if (linkAddress !== null) {
    icmp[24] = message.type === "solicitation" ? OPTION_SOURCE_LINK_ADDRESS : OPTION_TARGET_LINK_ADDRESS;
    icmp[25] = 1;
    macToBytes(linkAddress).copy(icmp, 26);
  }
  icmp.writeUInt16BE(icmpv6Checksum(source, destination, icmp), 2);
  return frame;
}

/** ff02::1:ffXX:XXXX, the group a node listens on for solicitations of an address. */
export function solicitedNodeAddress(ip: string): string {
  const bytes = ipv6ToBytes(ip);
  return formatIPv6(Buffer.from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, bytes[13] as number, bytes[14] as number, bytes[15] as number]));
}

/** 33:33 + the last four bytes of an IPv6 multicast address (RFC 2464 §7). */
export function multicastMac(ip: string): string {
  const bytes = ipv6ToBytes(ip);
  return formatMac(Buffer.from([0x33, 0x33, bytes[12] as number, bytes[13] as number, bytes[14] as number, bytes[15] as number]));
}

// IP and MAC addresses as they sit in frames. Text forms are canonical (IP text is @bollard/core's, as
// the controller writes it into Service status; lower-case colon MAC), so a decoded address can be looked
// up in a set of owned addresses.
import { formatIP, type IPAddress, type IPFamily, parseIP } from "@bollard/core";

/** Address text that is not a MAC, IPv4 or IPv6 address. */
export class AddressBytesError extends Error {
  override name = "AddressBytesError";
  readonly input: string;
  readonly expected: "MAC" | "IPv4" | "IPv6";
  constructor(input: string, expected: "MAC" | "IPv4" | "IPv6") {
    super(`${JSON.stringify(input)} is not a valid ${expected} address`);
    this.input = input;
    this.expected = expected;
  }
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export function macToBytes(mac: string): Buffer {
  if (!MAC.test(mac)) throw new AddressBytesError(mac, "MAC");
  return Buffer.from(mac.replaceAll(":", ""), "hex");
}

export function formatMac(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += (i === 0 ? "" : ":") + (bytes[i] as number).toString(16).padStart(2, "0");
  return text;
}

/** The 4 (IPv4) or 16 (IPv6) bytes of an address, in network order. */
function ipToBytes(ip: string, family: IPFamily): Buffer {
  let parsed: IPAddress;
  try {
    parsed = parseIP(ip);
  } catch {
    throw new AddressBytesError(ip, `IPv${family}`);
  }
  if (parsed.family !== family) throw new AddressBytesError(ip, `IPv${family}`);
  const bytes = Buffer.alloc(family === 4 ? 4 : 16);
  let value = parsed.value;
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return bytes;
}

function formatIPBytes(bytes: Uint8Array, offset: number, family: IPFamily): string {
  let value = 0n;
  for (let i = 0; i < (family === 4 ? 4 : 16); i++) value = (value << 8n) | BigInt(bytes[offset + i] as number);
  return formatIP({ family, value });
}

export const ipv4ToBytes = (ip: string): Buffer => ipToBytes(ip, 4);
export const ipv6ToBytes = (ip: string): Buffer => ipToBytes(ip, 6);
export const formatIPv4 = (bytes: Uint8Array, offset = 0): string => formatIPBytes(bytes, offset, 4);
export const formatIPv6 = (bytes: Uint8Array, offset = 0): string => formatIPBytes(bytes, offset, 6);

/** The canonical text of an IPv4 or IPv6 address, or null if it is neither. */
export function canonicalIP(ip: string): string | null {
  try {
    return formatIP(parseIP(ip));
  } catch {
    return null;
  }
}

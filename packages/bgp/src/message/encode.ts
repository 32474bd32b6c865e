// Messages → bytes, in the canonical forms: attributes in type-code order, extended length only when needed.
import { parseAddress, parsePrefix, type Prefix } from "./address.ts";
import { AttributeCode, AttributeFlag, CapabilityCode, HEADER_LENGTH, MAX_MESSAGE_LENGTH, MessageType, OPTIONAL_PARAMETER_CAPABILITIES } from "./constants.ts";
import { BgpEncodeError } from "./errors.ts";
import type { Capability, Message, PathAttributes, UpdateContext } from "./types.ts";

/** Grows as octets are appended; checks every number against its field's width. */
class Writer {
  private bytes = new Uint8Array(256);
  length = 0;
  private ensure(n: number) {
    if (this.length + n <= this.bytes.length) return;
    const next = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }
  private check(n: number, max: number, what: string) {
    if (!Number.isInteger(n) || n < 0 || n > max) throw new BgpEncodeError(`${what} ${n} does not fit its field (0..${max})`);
  }
  u8(n: number, what = "value") {
    this.check(n, 0xff, what);
    this.ensure(1);
    this.bytes[this.length++] = n;
  }
  u16(n: number, what = "value") {
    this.check(n, 0xffff, what);
    this.ensure(2);
    this.bytes[this.length++] = n >> 8;
    this.bytes[this.length++] = n & 0xff;
  }
  u32(n: number, what = "value") {
    this.check(n, 0xffffffff, what);
    this.ensure(4);
    this.bytes[this.length++] = n >>> 24;
    this.bytes[this.length++] = (n >>> 16) & 0xff;
    this.bytes[this.length++] = (n >>> 8) & 0xff;
    this.bytes[this.length++] = n & 0xff;
  }
  raw(b: Uint8Array) {
    this.ensure(b.length);
    this.bytes.set(b, this.length);
    this.length += b.length;
  }
  /** Writes a placeholder length field and returns a function that fills it with what was written since. */
  lengthField(octets: 1 | 2, what: string): () => void {
    const at = this.length;
    if (octets === 1) this.u8(0);
    else this.u16(0);
    return () => {
      const n = this.length - at - octets;
      this.check(n, octets === 1 ? 0xff : 0xffff, what);
      if (octets === 1) this.bytes[at] = n;
      else {
        this.bytes[at] = n >> 8;
        this.bytes[at + 1] = n & 0xff;
      }
    };
  }
  patchU16(at: number, n: number) {
    this.bytes[at] = n >> 8;
    this.bytes[at + 1] = n & 0xff;
  }
  done(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

function address(w: Writer, text: string, family?: 4 | 6) {
  let bytes: Uint8Array;
  try {
    bytes = parseAddress(text);
  } catch (err) {
    throw new BgpEncodeError((err as Error).message);
  }
  if (family !== undefined && bytes.length !== (family === 4 ? 4 : 16)) throw new BgpEncodeError(`${text} is not an IPv${family} address`);
  w.raw(bytes);
}

function prefixes(w: Writer, list: Prefix[], family: 4 | 6) {
  for (const text of list) {
    let p: ReturnType<typeof parsePrefix>;
    try {
      p = parsePrefix(text);
    } catch (err) {
      throw new BgpEncodeError((err as Error).message);
    }
    if (p.family !== family) throw new BgpEncodeError(`${text} is not an IPv${family} prefix`);
    w.u8(p.length);
    w.raw(p.bytes.subarray(0, (p.length + 7) >> 3));
  }
}

/** Encodes one message, header included; throws BgpEncodeError for data that cannot be a BGP message. */
export function encodeMessage(message: Message, context: UpdateContext): Uint8Array {
  const w = new Writer();
  w.raw(new Uint8Array(16).fill(0xff));
  w.u16(0); // the message length, known at the end
  const type = { open: MessageType.open, update: MessageType.update, notification: MessageType.notification, keepalive: MessageType.keepalive, "route-refresh": MessageType.routeRefresh }[message.type];
  w.u8(type);
  switch (message.type) {
    case "open": {
      w.u8(4);
      w.u16(message.myAs, "My Autonomous System");
      w.u16(message.holdTime, "hold time");
      address(w, message.routerId, 4);
      const setParametersLength = w.lengthField(1, "optional parameters length");
      if (message.capabilities.length > 0) {
        w.u8(OPTIONAL_PARAMETER_CAPABILITIES);
        const setCapabilitiesLength = w.lengthField(1, "capabilities length");
        for (const c of message.capabilities) capability(w, c);
        setCapabilitiesLength();
      }
      setParametersLength();
      break;
    }
    case "update": {
      const setWithdrawnLength = w.lengthField(2, "withdrawn routes length");
      prefixes(w, message.withdrawn, 4);
      setWithdrawnLength();
      const setAttributesLength = w.lengthField(2, "total path attribute length");
      attributes(w, message.attributes, context);
      setAttributesLength();
      prefixes(w, message.nlri, 4);
      break;
    }
    case "notification":
      w.u8(message.code, "error code");
      w.u8(message.subcode, "error subcode");
      w.raw(message.data);
      break;
    case "keepalive":
      break;
    case "route-refresh":
      w.u16(message.afi, "AFI");
      w.u8(message.subtype, "subtype");
      w.u8(message.safi, "SAFI");
      break;
  }
  if (w.length > MAX_MESSAGE_LENGTH) throw new BgpEncodeError(`a ${message.type} of ${w.length} octets exceeds ${MAX_MESSAGE_LENGTH}`);
  w.patchU16(16, w.length);
  const bytes = w.done();
  if (bytes.length > MAX_MESSAGE_LENGTH) throw new BgpEncodeError(`a ${message.type} of ${bytes.length} octets exceeds ${MAX_MESSAGE_LENGTH}`);
  if (bytes.length < HEADER_LENGTH) throw new BgpEncodeError("impossible: shorter than a header");
  return bytes;
}

function capability(w: Writer, c: Capability) {
  switch (c.kind) {
    case "multiprotocol":
      w.u8(CapabilityCode.multiprotocol);
      w.u8(4);
      w.u16(c.afi, "AFI");
      w.u8(0);
      w.u8(c.safi, "SAFI");
      return;
    case "route-refresh":
      w.u8(CapabilityCode.routeRefresh);
      w.u8(0);
      return;
    case "four-octet-as":
      w.u8(CapabilityCode.fourOctetAs);
      w.u8(4);
      w.u32(c.asn, "AS number");
      return;
    case "graceful-restart": {
      w.u8(CapabilityCode.gracefulRestart);
      const setLength = w.lengthField(1, "graceful restart capability length");
      if (c.restartTime > 0x0fff || c.restartTime < 0) throw new BgpEncodeError(`restart time ${c.restartTime} does not fit 12 bits`);
      w.u16((c.restarting ? 0x8000 : 0) | c.restartTime);
      for (const f of c.families) {
        w.u16(f.afi, "AFI");
        w.u8(f.safi, "SAFI");
        w.u8(f.forwardingPreserved ? 0x80 : 0);
      }
      setLength();
      return;
    }
    case "unknown": {
      w.u8(c.code, "capability code");
      const setLength = w.lengthField(1, "capability length");
      w.raw(c.value);
      setLength();
      return;
    }
  }
}

function attribute(w: Writer, flags: number, code: number, value: (w: Writer) => void) {
  const inner = new Writer();
  value(inner);
  const bytes = inner.done();
  const extended = bytes.length > 0xff;
  w.u8(extended ? flags | AttributeFlag.extendedLength : flags & ~AttributeFlag.extendedLength);
  w.u8(code);
  if (extended) w.u16(bytes.length, "attribute length");
  else w.u8(bytes.length);
  w.raw(bytes);
}

const WELL_KNOWN = AttributeFlag.transitive;
const OPTIONAL_TRANSITIVE = AttributeFlag.optional | AttributeFlag.transitive;
const OPTIONAL = AttributeFlag.optional;

function attributes(w: Writer, a: PathAttributes, context: UpdateContext) {
  const asSize = context.fourOctetAs ? 4 : 2;
  const asn = (x: Writer, n: number) => (asSize === 4 ? x.u32(n, "AS number") : x.u16(n, "AS number (2-octet session)"));
  // Every attribute, known or not, written in type-code order.
  const writers: [number, () => void][] = [];
  if (a.origin !== undefined) {
    const origin = a.origin;
    writers.push([AttributeCode.origin, () => attribute(w, WELL_KNOWN, AttributeCode.origin, (x) => x.u8({ igp: 0, egp: 1, incomplete: 2 }[origin]))]);
  }
  if (a.asPath !== undefined) {
    const path = a.asPath;
    writers.push([
      AttributeCode.asPath,
      () =>
        attribute(w, WELL_KNOWN, AttributeCode.asPath, (x) => {
          for (const segment of path) {
            if (segment.asns.length === 0) throw new BgpEncodeError("an AS_PATH segment needs at least one AS");
            x.u8({ set: 1, sequence: 2, "confed-sequence": 3, "confed-set": 4 }[segment.type]);
            x.u8(segment.asns.length, "AS_PATH segment length");
            for (const n of segment.asns) asn(x, n);
          }
        }),
    ]);
  }
  if (a.nextHop !== undefined) {
    const nextHop = a.nextHop;
    writers.push([AttributeCode.nextHop, () => attribute(w, WELL_KNOWN, AttributeCode.nextHop, (x) => address(x, nextHop, 4))]);
  }
  if (a.med !== undefined) {
    const med = a.med;
    writers.push([AttributeCode.med, () => attribute(w, OPTIONAL, AttributeCode.med, (x) => x.u32(med, "MED"))]);
  }
  if (a.localPref !== undefined) {
    const localPref = a.localPref;
    writers.push([AttributeCode.localPref, () => attribute(w, WELL_KNOWN, AttributeCode.localPref, (x) => x.u32(localPref, "LOCAL_PREF"))]);
  }
  if (a.atomicAggregate) writers.push([AttributeCode.atomicAggregate, () => attribute(w, WELL_KNOWN, AttributeCode.atomicAggregate, () => {})]);
  if (a.aggregator !== undefined) {
    const aggregator = a.aggregator;
    writers.push([
      AttributeCode.aggregator,
      () =>
        attribute(w, OPTIONAL_TRANSITIVE, AttributeCode.aggregator, (x) => {
          asn(x, aggregator.asn);
          address(x, aggregator.address, 4);
        }),
    ]);
  }
  if (a.communities !== undefined && a.communities.length > 0) {
    const communities = a.communities;
    writers.push([AttributeCode.communities, () => attribute(w, OPTIONAL_TRANSITIVE, AttributeCode.communities, (x) => {
          for (const c of communities) x.u32(c, "community");
        }),
    ]);
  }
  if (a.mpReach !== undefined) {
    const mp = a.mpReach;
    writers.push([
      AttributeCode.mpReach,
      () =>
        attribute(w, OPTIONAL, AttributeCode.mpReach, (x) => {
          const family = mp.afi === 1 ? 4 : mp.afi === 2 ? 6 : undefined;
          if (family === undefined || mp.safi !== 1) throw new BgpEncodeError(`MP_REACH_NLRI for AFI ${mp.afi} SAFI ${mp.safi} is not supported`);
          x.u16(mp.afi);
          x.u8(mp.safi);
          const setNextHopLength = x.lengthField(1, "next hop length");
          for (const hop of mp.nextHops) address(x, hop, family);
          setNextHopLength();
          x.u8(0);
          prefixes(x, mp.nlri, family);
        }),
    ]);
  }
  if (a.mpUnreach !== undefined) {
    const mp = a.mpUnreach;
    writers.push([
      AttributeCode.mpUnreach,
      () =>
        attribute(w, OPTIONAL, AttributeCode.mpUnreach, (x) => {
          const family = mp.afi === 1 ? 4 : mp.afi === 2 ? 6 : undefined;
          if (family === undefined || mp.safi !== 1) throw new BgpEncodeError(`MP_UNREACH_NLRI for AFI ${mp.afi} SAFI ${mp.safi} is not supported`);
          x.u16(mp.afi);
          x.u8(mp.safi);
          prefixes(x, mp.withdrawn, family);
        }),
    ]);
  }
  if (a.largeCommunities !== undefined && a.largeCommunities.length > 0) {
    const large = a.largeCommunities;
    writers.push([
      AttributeCode.largeCommunities,
      () => attribute(w, OPTIONAL_TRANSITIVE, AttributeCode.largeCommunities, (x) => {
        for (const c of large) for (const n of c) x.u32(n, "large community part");
      }),
    ]);
  }
  for (const u of a.unknown ?? []) writers.push([u.code, () => attribute(w, u.flags, u.code, (x) => x.raw(u.value))]);
  writers.sort((p, q) => p[0] - q[0]);
  for (const [, write] of writers) write();
}

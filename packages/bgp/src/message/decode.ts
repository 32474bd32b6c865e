// Bytes → messages. Never throws anything but BgpDecodeError (a problem the session cannot survive, carrying the
// NOTIFICATION to send); malformed attributes that RFC 7606 lets the session survive are reported in the UPDATE.
import { type Family, formatAddress, formatPrefix, type Prefix } from "./address.ts";
import {
  Afi,
  AttributeCode,
  AttributeFlag,
  CapabilityCode,
  ErrorCode,
  HEADER_LENGTH,
  HeaderError,
  MARKER_LENGTH,
  MAX_MESSAGE_LENGTH,
  MessageType,
  OPTIONAL_PARAMETER_CAPABILITIES,
  OpenError,
  RouteRefreshError,
  Safi,
  UpdateError,
} from "./constants.ts";
import { ATTRIBUTE_RULES, type AttributeRule, BgpDecodeError } from "./errors.ts";
import type {
  AsPathSegment,
  AttributeProblem,
  Capability,
  LargeCommunity,
  Message,
  NotificationMessage,
  OpenMessage,
  PathAttributes,
  RouteRefreshMessage,
  UnknownAttribute,
  UpdateContext,
  UpdateMessage,
} from "./types.ts";

const u16 = (b: Uint8Array, at: number) => ((b[at] as number) << 8) | (b[at + 1] as number);
const u32 = (b: Uint8Array, at: number) => (((b[at] as number) << 24) >>> 0) + (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number));
const twoOctets = (n: number) => Uint8Array.of((n >> 8) & 0xff, n & 0xff);

/**
 * Checks a message header (RFC 4271 §6.1) and returns the message's total length and type. `bytes` may be
 * shorter than the message: a stream reader calls this as soon as 19 octets have arrived.
 */
export function checkHeader(bytes: Uint8Array): { length: number; type: number } {
  if (bytes.length < HEADER_LENGTH) throw new BgpDecodeError(ErrorCode.header, HeaderError.badMessageLength, `a header needs ${HEADER_LENGTH} octets, got ${bytes.length}`);
  for (let i = 0; i < MARKER_LENGTH; i++) {
    if (bytes[i] !== 0xff) throw new BgpDecodeError(ErrorCode.header, HeaderError.connectionNotSynchronized, "the marker is not all ones");
  }
  const length = u16(bytes, 16);
  const type = bytes[18] as number;
  const minimum: Record<number, number> = { 1: 29, 2: 23, 3: 21, 4: 19, 5: 23 };
  const min = minimum[type];
  if (min === undefined) throw new BgpDecodeError(ErrorCode.header, HeaderError.badMessageType, `unknown message type ${type}`, Uint8Array.of(type));
  if (length < min || length > MAX_MESSAGE_LENGTH || (type === MessageType.keepalive && length !== HEADER_LENGTH)) {
    throw new BgpDecodeError(ErrorCode.header, HeaderError.badMessageLength, `length ${length} is wrong for message type ${type}`, twoOctets(length));
  }
  return { length, type };
}

/** Decodes one whole message (header included). */
export function decodeMessage(bytes: Uint8Array, context: UpdateContext): Message {
  const { length, type } = checkHeader(bytes);
  if (length !== bytes.length) {
    throw new BgpDecodeError(ErrorCode.header, HeaderError.badMessageLength, `the header says ${length} octets, the message has ${bytes.length}`, twoOctets(length));
  }
  const body = bytes.subarray(HEADER_LENGTH);
  switch (type) {
    case MessageType.open:
      return decodeOpen(body);
    case MessageType.update:
      return decodeUpdate(body, context);
    case MessageType.notification:
      return decodeNotification(body);
    case MessageType.keepalive:
      return { type: "keepalive" };
    default:
      return decodeRouteRefresh(body);
  }
}

function decodeNotification(body: Uint8Array): NotificationMessage {
  return { type: "notification", code: body[0] as number, subcode: body[1] as number, data: Uint8Array.from(body.subarray(2)) };
}

function decodeRouteRefresh(body: Uint8Array): RouteRefreshMessage {
  if (body.length !== 4) {
    throw new BgpDecodeError(ErrorCode.routeRefresh, RouteRefreshError.invalidMessageLength, `a ROUTE-REFRESH body has 4 octets, not ${body.length}`);
  }
  return { type: "route-refresh", afi: u16(body, 0), subtype: body[2] as number, safi: body[3] as number };
}

function decodeOpen(body: Uint8Array): OpenMessage {
  const version = body[0] as number;
  if (version !== 4) throw new BgpDecodeError(ErrorCode.open, OpenError.unsupportedVersionNumber, `BGP version ${version}`, twoOctets(4));
  const myAs = u16(body, 1);
  const holdTime = u16(body, 3);
  if (holdTime === 1 || holdTime === 2) throw new BgpDecodeError(ErrorCode.open, OpenError.unacceptableHoldTime, `hold time ${holdTime} s (must be 0 or at least 3)`);
  const routerId = formatAddress(body.subarray(5, 9));
  const parametersLength = body[9] as number;
  if (10 + parametersLength !== body.length) {
    throw new BgpDecodeError(ErrorCode.open, 0, `optional parameters length ${parametersLength} does not match the message (${body.length - 10})`);
  }
  const capabilities: Capability[] = [];
  let at = 10;
  while (at < body.length) {
    if (at + 2 > body.length) throw new BgpDecodeError(ErrorCode.open, 0, "an optional parameter is cut short");
    const parameterType = body[at] as number;
    const parameterLength = body[at + 1] as number;
    const end = at + 2 + parameterLength;
    if (end > body.length) throw new BgpDecodeError(ErrorCode.open, 0, `optional parameter ${parameterType} overruns the message`);
    if (parameterType !== OPTIONAL_PARAMETER_CAPABILITIES) {
      throw new BgpDecodeError(ErrorCode.open, OpenError.unsupportedOptionalParameter, `optional parameter type ${parameterType}`);
    }
    at += 2;
    while (at < end) {
      if (at + 2 > end) throw new BgpDecodeError(ErrorCode.open, 0, "a capability is cut short");
      const code = body[at] as number;
      const valueLength = body[at + 1] as number;
      if (at + 2 + valueLength > end) throw new BgpDecodeError(ErrorCode.open, 0, `capability ${code} overruns its parameter`);
      capabilities.push(decodeCapability(code, body.subarray(at + 2, at + 2 + valueLength)));
      at += 2 + valueLength;
    }
  }
  return { type: "open", myAs, holdTime, routerId, capabilities };
}

function decodeCapability(code: number, value: Uint8Array): Capability {
  const malformed = (what: string) => new BgpDecodeError(ErrorCode.open, 0, `malformed ${what} capability (${value.length} octets)`);
  switch (code) {
    case CapabilityCode.multiprotocol:
      if (value.length !== 4) throw malformed("multiprotocol");
      return { kind: "multiprotocol", afi: u16(value, 0), safi: value[3] as number };
    case CapabilityCode.routeRefresh:
      if (value.length !== 0) throw malformed("route refresh");
      return { kind: "route-refresh" };
    case CapabilityCode.fourOctetAs:
      if (value.length !== 4) throw malformed("4-octet AS");
      return { kind: "four-octet-as", asn: u32(value, 0) };
    case CapabilityCode.gracefulRestart: {
      if (value.length < 2 || (value.length - 2) % 4 !== 0) throw malformed("graceful restart");
      const families = [];
      for (let at = 2; at < value.length; at += 4) {
        families.push({ afi: u16(value, at), safi: value[at + 2] as number, forwardingPreserved: ((value[at + 3] as number) & 0x80) !== 0 });
      }
      return { kind: "graceful-restart", restarting: ((value[0] as number) & 0x80) !== 0, restartTime: u16(value, 0) & 0x0fff, families };
    }
    default:
      return { kind: "unknown", code, value: Uint8Array.from(value) };
  }
}

/** A prefix list (NLRI, withdrawn routes, MP_REACH/MP_UNREACH NLRI); undefined when it cannot be parsed. */
function decodePrefixes(bytes: Uint8Array, family: Family): Prefix[] | undefined {
  const maxLength = family === 4 ? 32 : 128;
  const prefixes: Prefix[] = [];
  const address = new Uint8Array(family === 4 ? 4 : 16);
  let at = 0;
  while (at < bytes.length) {
    const length = bytes[at] as number;
    const octets = (length + 7) >> 3;
    if (length > maxLength || at + 1 + octets > bytes.length) return undefined;
    address.fill(0);
    address.set(bytes.subarray(at + 1, at + 1 + octets));
    prefixes.push(formatPrefix(address, length));
    at += 1 + octets;
  }
  return prefixes;
}

function keepUnknown(into: PathAttributes, attribute: UnknownAttribute): void {
  if (into.unknown) into.unknown.push(attribute);
  else into.unknown = [attribute];
}

/** Thrown inside attribute decoders only; turned into an RFC 7606 action by the caller. */
class Malformed {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

const familyOfAfi = (afi: number): Family | undefined => (afi === Afi.ipv4 ? 4 : afi === Afi.ipv6 ? 6 : undefined);

function decodeUpdate(body: Uint8Array, context: UpdateContext): UpdateMessage {
  const withdrawnLength = u16(body, 0);
  if (2 + withdrawnLength + 2 > body.length) {
    throw new BgpDecodeError(ErrorCode.update, UpdateError.malformedAttributeList, `withdrawn routes length ${withdrawnLength} overruns the message`);
  }
  const attributesLength = u16(body, 2 + withdrawnLength);
  const attributesStart = 4 + withdrawnLength;
  const attributesEnd = attributesStart + attributesLength;
  if (attributesEnd > body.length) {
    throw new BgpDecodeError(ErrorCode.update, UpdateError.malformedAttributeList, `total path attribute length ${attributesLength} overruns the message`);
  }
  const withdrawn = decodePrefixes(body.subarray(2, 2 + withdrawnLength), 4);
  if (!withdrawn) throw new BgpDecodeError(ErrorCode.update, UpdateError.invalidNetworkField, "the withdrawn routes cannot be parsed");
  const nlri = decodePrefixes(body.subarray(attributesEnd), 4);
  if (!nlri) throw new BgpDecodeError(ErrorCode.update, UpdateError.invalidNetworkField, "the NLRI cannot be parsed");

  const attributes: PathAttributes = {};
  const problems: AttributeProblem[] = [];
  let treatAsWithdraw = false;
  const seen = new Set<number>();
  const problem = (code: number, rule: AttributeRule | undefined, reason: string, raw: Uint8Array) => {
    const action = rule?.onMalformed ?? "treat-as-withdraw";
    if (action === "session-reset") {
      const subcode = code === AttributeCode.mpReach || code === AttributeCode.mpUnreach ? UpdateError.optionalAttributeError : UpdateError.malformedAttributeList;
      throw new BgpDecodeError(ErrorCode.update, subcode, `${rule?.name ?? `attribute ${code}`}: ${reason}`, Uint8Array.from(raw));
    }
    if (action === "treat-as-withdraw") treatAsWithdraw = true;
    problems.push({ code, action, reason: `${rule?.name ?? `attribute ${code}`}: ${reason}` });
  };

  let at = attributesStart;
  while (at < attributesEnd) {
    const flags = body[at] as number;
    const code = body[at + 1] as number;
    const extended = (flags & AttributeFlag.extendedLength) !== 0;
    const headerLength = extended ? 4 : 3;
    const length = at + headerLength <= attributesEnd ? (extended ? u16(body, at + 2) : (body[at + 2] as number)) : -1;
    if (length < 0 || at + headerLength + length > attributesEnd) {
      // RFC 7606 §4: the attribute overruns the path attributes; treat-as-withdraw, provided the prefixes the
      // message carries could all be located (§5.3) — they cannot if an MP attribute may hide in the rest.
      const located = withdrawn.length + nlri.length > 0 && !seen.has(AttributeCode.mpReach) && !seen.has(AttributeCode.mpUnreach);
      if (!located) throw new BgpDecodeError(ErrorCode.update, UpdateError.malformedAttributeList, `attribute ${code} overruns the path attributes`);
      treatAsWithdraw = true;
      problems.push({ code, action: "treat-as-withdraw", reason: `attribute ${code} overruns the path attributes` });
      break;
    }
    const raw = body.subarray(at, at + headerLength + length);
    const value = body.subarray(at + headerLength, at + headerLength + length);
    at += headerLength + length;
    const rule = ATTRIBUTE_RULES.get(code);
    if (seen.has(code)) {
      if (rule?.onRepeat === "session-reset") {
        throw new BgpDecodeError(ErrorCode.update, UpdateError.malformedAttributeList, `${rule.name} appears twice`);
      }
      problems.push({ code, action: "attribute-discard", reason: `${rule?.name ?? `attribute ${code}`} appears again; the repeat is dropped` });
      continue;
    }
    seen.add(code);
    if (!rule) {
      if ((flags & AttributeFlag.optional) === 0) {
        throw new BgpDecodeError(ErrorCode.update, UpdateError.unrecognizedWellKnownAttribute, `unrecognized well-known attribute ${code}`, Uint8Array.from(raw));
      }
      keepUnknown(attributes, { flags, code, value: Uint8Array.from(value) });
      continue;
    }
    const wantFlags = { "well-known": AttributeFlag.transitive, "optional-transitive": AttributeFlag.optional | AttributeFlag.transitive, "optional-non-transitive": AttributeFlag.optional }[rule.category];
    if ((flags & (AttributeFlag.optional | AttributeFlag.transitive)) !== wantFlags) {
      problem(code, rule, `flags 0x${flags.toString(16)} conflict with the attribute's category (${rule.category})`, raw);
      continue;
    }
    try {
      decodeAttribute(code, value, attributes, context);
    } catch (err) {
      if (!(err instanceof Malformed)) throw err;
      if (err instanceof MalformedNextHop) {
        treatAsWithdraw = true;
        problems.push({ code, action: "treat-as-withdraw", reason: `${rule.name}: ${err.reason}` });
      } else {
        problem(code, rule, err.reason, raw);
      }
    }
  }

  // Kept in type-code order, the order they are written in.
  attributes.unknown?.sort((a, b) => a.code - b.code);
  if (attributes.localPref !== undefined && context.external) {
    delete attributes.localPref;
    problems.push({ code: AttributeCode.localPref, action: "attribute-discard", reason: "LOCAL_PREF from an external peer is ignored" });
  }
  // RFC 7606 §3(d): a well-known mandatory attribute missing from an UPDATE that announces something.
  const announces = nlri.length > 0 || (attributes.mpReach?.nlri.length ?? 0) > 0;
  if (announces && !treatAsWithdraw) {
    const missing: number[] = [];
    if (attributes.origin === undefined) missing.push(AttributeCode.origin);
    if (attributes.asPath === undefined) missing.push(AttributeCode.asPath);
    if (nlri.length > 0 && attributes.nextHop === undefined) missing.push(AttributeCode.nextHop);
    for (const code of missing) {
      treatAsWithdraw = true;
      problems.push({ code, action: "treat-as-withdraw", reason: `${ATTRIBUTE_RULES.get(code)?.name} is missing` });
    }
  }
  const update: UpdateMessage = { type: "update", withdrawn, attributes, nlri };
  if (treatAsWithdraw) update.treatAsWithdraw = true;
  if (problems.length > 0) update.problems = problems;
  return update;
}

function decodeAttribute(code: number, value: Uint8Array, into: PathAttributes, context: UpdateContext): void {
  const exactLength = (n: number) => {
    if (value.length !== n) throw new Malformed(`length ${value.length}, expected ${n}`);
  };
  switch (code) {
    case AttributeCode.origin: {
      exactLength(1);
      const origin = (["igp", "egp", "incomplete"] as const)[value[0] as number];
      if (!origin) throw new Malformed(`undefined value ${value[0]}`);
      into.origin = origin;
      return;
    }
    case AttributeCode.asPath:
      into.asPath = decodeAsPath(value, context);
      return;
    case AttributeCode.nextHop:
      exactLength(4);
      into.nextHop = formatAddress(value);
      return;
    case AttributeCode.med:
      exactLength(4);
      into.med = u32(value, 0);
      return;
    case AttributeCode.localPref:
      exactLength(4);
      into.localPref = u32(value, 0);
      return;
    case AttributeCode.atomicAggregate:
      exactLength(0);
      into.atomicAggregate = true;
      return;
    case AttributeCode.aggregator:
      exactLength(context.fourOctetAs ? 8 : 6);
      into.aggregator = context.fourOctetAs
        ? { asn: u32(value, 0), address: formatAddress(value.subarray(4, 8)) }
        : { asn: u16(value, 0), address: formatAddress(value.subarray(2, 6)) };
      return;
    case AttributeCode.communities: {
      if (value.length === 0 || value.length % 4 !== 0) throw new Malformed(`length ${value.length} is not a positive multiple of 4`);
      const communities: number[] = [];
      for (let at = 0; at < value.length; at += 4) communities.push(u32(value, at));
      into.communities = communities;
      return;
    }
    case AttributeCode.largeCommunities: {
      if (value.length === 0 || value.length % 12 !== 0) throw new Malformed(`length ${value.length} is not a positive multiple of 12`);
      const large: LargeCommunity[] = [];
      for (let at = 0; at < value.length; at += 12) large.push([u32(value, at), u32(value, at + 4), u32(value, at + 8)]);
      into.largeCommunities = large;
      return;
    }
    case AttributeCode.mpReach:
      decodeMpReach(value, into);
      return;
    case AttributeCode.mpUnreach: {
      if (value.length < 3) throw new Malformed(`length ${value.length} is shorter than AFI and SAFI`);
      const afi = u16(value, 0);
      const safi = value[2] as number;
      const family = familyOfAfi(afi);
      if (family === undefined || safi !== Safi.unicast) {
        keepUnknown(into, { flags: AttributeFlag.optional, code, value: Uint8Array.from(value) });
        return;
      }
      const withdrawn = decodePrefixes(value.subarray(3), family);
      if (!withdrawn) throw new Malformed("the withdrawn routes cannot be parsed");
      into.mpUnreach = { afi, safi, withdrawn };
      return;
    }
    default:
      // AS4_PATH and AS4_AGGREGATOR between two 4-octet-AS speakers (RFC 6793 §6): dropped.
      throw new Malformed("not expected from a 4-octet-AS speaker");
  }
}

function decodeAsPath(value: Uint8Array, context: UpdateContext): AsPathSegment[] {
  const size = context.fourOctetAs ? 4 : 2;
  const types = [undefined, "set", "sequence", "confed-sequence", "confed-set"] as const;
  const segments: AsPathSegment[] = [];
  let at = 0;
  while (at < value.length) {
    if (at + 2 > value.length) throw new Malformed("a segment header is cut short");
    const type = types[value[at] as number];
    const count = value[at + 1] as number;
    if (!type) throw new Malformed(`undefined segment type ${value[at]}`);
    if (count === 0) throw new Malformed("a segment of length zero");
    if (at + 2 + count * size > value.length) throw new Malformed("a segment overruns the attribute");
    if (context.external && type.startsWith("confed")) throw new Malformed("a confederation segment from an external peer");
    const asns: number[] = [];
    for (let i = 0; i < count; i++) asns.push(size === 4 ? u32(value, at + 2 + i * 4) : u16(value, at + 2 + i * 2));
    segments.push({ type, asns });
    at += 2 + count * size;
  }
  return segments;
}

function decodeMpReach(value: Uint8Array, into: PathAttributes): void {
  if (value.length < 5) throw new Malformed(`length ${value.length} is too short`);
  const afi = u16(value, 0);
  const safi = value[2] as number;
  const nextHopLength = value[3] as number;
  if (4 + nextHopLength + 1 > value.length) throw new Malformed(`next hop length ${nextHopLength} overruns the attribute`);
  const family = familyOfAfi(afi);
  if (family === undefined || safi !== Safi.unicast) {
    // Not a family this speaker negotiates: kept, never interpreted.
    keepUnknown(into, { flags: AttributeFlag.optional, code: AttributeCode.mpReach, value: Uint8Array.from(value) });
    return;
  }
  const nlri = decodePrefixes(value.subarray(4 + nextHopLength + 1), family);
  if (!nlri) throw new Malformed("the NLRI cannot be parsed");
  const nextHop = value.subarray(4, 4 + nextHopLength);
  const nextHops =
    family === 4 && nextHopLength === 4
      ? [formatAddress(nextHop)]
      : family === 6 && nextHopLength === 16
        ? [formatAddress(nextHop)]
        : family === 6 && nextHopLength === 32
          ? [formatAddress(nextHop.subarray(0, 16)), formatAddress(nextHop.subarray(16))]
          : undefined;
  into.mpReach = { afi, safi, nextHops: nextHops ?? [], nlri };
  // RFC 7606 §7.11: a next hop of the wrong length, with NLRI that parse, is treat-as-withdraw.
  if (!nextHops) throw new MalformedNextHop(`next hop length ${nextHopLength} for AFI ${afi}`);
}

/** An MP_REACH_NLRI whose NLRI parsed but whose next hop did not: treat-as-withdraw, not a session reset. */
class MalformedNextHop extends Malformed {}

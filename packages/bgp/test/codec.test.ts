// The message codec against byte fixtures: whole messages decoded to data and encoded back to the same bytes,
// then RFC 7606's decisions for malformed UPDATEs and RFC 4271's for broken headers and OPENs, one row each.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BgpDecodeError,
  BgpEncodeError,
  decodeMessage,
  encodeMessage,
  FrameReader,
  type Message,
  type UpdateContext,
  type UpdateMessage,
} from "@bollard/bgp";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const MARKER = "ffffffffffffffffffffffffffffffff";
const ebgp: UpdateContext = { fourOctetAs: true, external: true };
const ibgp: UpdateContext = { fourOctetAs: true, external: false };

/** An UPDATE around the given fields, lengths computed. */
function update(attributes: string, nlri = "", withdrawn = ""): Uint8Array {
  const [w, a, n] = [hex(withdrawn), hex(attributes), hex(nlri)];
  const body = Buffer.concat([Buffer.from([w.length >> 8, w.length & 0xff]), w, Buffer.from([a.length >> 8, a.length & 0xff]), a, n]);
  const length = 19 + body.length;
  return Uint8Array.from(Buffer.concat([hex(MARKER), Buffer.from([length >> 8, length & 0xff, 2]), body]));
}

const ORIGIN_IGP = "40 01 01 00";
const AS_PATH_64500 = "40 02 06 02 01 0000fbf4";
const NEXT_HOP = "40 03 04 0a000002";
const NLRI_ONE = "20 c0a80a01";

type Fixture = { name: string; bytes: string; message: Message; context?: UpdateContext };

const fixtures: Fixture[] = [
  { name: "KEEPALIVE", bytes: `${MARKER} 0013 04`, message: { type: "keepalive" } },
  {
    name: "OPEN: AS 64500, hold 90 s, IPv4 + IPv6 unicast, route refresh, 4-octet AS, graceful restart 120 s",
    bytes: `${MARKER} 003f 01  04 fbf4 005a 0a000002 22  02 20
      01 04 0001 00 01   01 04 0002 00 01   02 00   41 04 0000fbf4   40 0a 0078 0001 01 00 0002 01 80`,
    message: {
      type: "open",
      myAs: 64500,
      holdTime: 90,
      routerId: "10.0.0.2",
      capabilities: [
        { kind: "multiprotocol", afi: 1, safi: 1 },
        { kind: "multiprotocol", afi: 2, safi: 1 },
        { kind: "route-refresh" },
        { kind: "four-octet-as", asn: 64500 },
        { kind: "graceful-restart", restarting: false, restartTime: 120, families: [{ afi: 1, safi: 1, forwardingPreserved: false }, { afi: 2, safi: 1, forwardingPreserved: true }] },
      ],
    },
  },
  {
    name: "OPEN: a 4-octet AS sends AS_TRANS (23456) in My Autonomous System; an unknown capability is kept",
    bytes: `${MARKER} 0027 01  04 5ba0 00b4 c0000201 0a  02 08  41 04 fa56ea00  49 00`,
    message: {
      type: "open",
      myAs: 23456,
      holdTime: 180,
      routerId: "192.0.2.1",
      capabilities: [{ kind: "four-octet-as", asn: 4200000000 }, { kind: "unknown", code: 73, value: new Uint8Array(0) }],
    },
  },
  {
    name: "UPDATE: IPv4 announcement with LOCAL_PREF, a community and a large community (iBGP)",
    bytes: `${MARKER} 0051 02  0000 0031
      40 01 01 00   40 02 06 02 01 0000fbf4   40 03 04 0a000002   40 05 04 00000064
      c0 08 04 ffffff02   c0 20 0c 0000fbf4 00000001 00000002
      20 c0a80a01  18 c0a814`,
    context: ibgp,
    message: {
      type: "update",
      withdrawn: [],
      attributes: {
        origin: "igp",
        asPath: [{ type: "sequence", asns: [64500] }],
        nextHop: "10.0.0.2",
        localPref: 100,
        communities: [0xffffff02],
        largeCommunities: [[64500, 1, 2]],
      },
      nlri: ["192.168.10.1/32", "192.168.20.0/24"],
    },
  },
  {
    name: "UPDATE: IPv6 announcement in MP_REACH_NLRI (RFC 4760)",
    bytes: `${MARKER} 004d 02  0000 0036
      40 01 01 00   40 02 06 02 01 0000fbf4
      80 0e 26 0002 01 10 fd000000000000000000000000000002 00 80 fd000001000000000000000000000001`,
    message: {
      type: "update",
      withdrawn: [],
      attributes: {
        origin: "igp",
        asPath: [{ type: "sequence", asns: [64500] }],
        mpReach: { afi: 2, safi: 1, nextHops: ["fd00::2"], nlri: ["fd00:1::1/128"] },
      },
      nlri: [],
    },
  },
  {
    name: "UPDATE: IPv6 next hop with its link-local address (32 octets, RFC 2545), MED, AGGREGATOR, ATOMIC_AGGREGATE",
    bytes: `${MARKER} 006e 02  0000 0057
      40 01 01 02   40 02 0a 02 02 0000fbf4 0000fbf5   80 04 04 0000000a   40 06 00   c0 07 08 0000fbf4 0a000002
      80 0e 2e 0002 01 20 20010db8000000000000000000000001 fe800000000000000000000000000001 00 40 20010db800010000`,
    message: {
      type: "update",
      withdrawn: [],
      attributes: {
        origin: "incomplete",
        asPath: [{ type: "sequence", asns: [64500, 64501] }],
        med: 10,
        atomicAggregate: true,
        aggregator: { asn: 64500, address: "10.0.0.2" },
        mpReach: { afi: 2, safi: 1, nextHops: ["2001:db8::1", "fe80::1"], nlri: ["2001:db8:1::/64"] },
      },
      nlri: [],
    },
  },
  {
    name: "UPDATE: IPv6 withdrawal in MP_UNREACH_NLRI",
    bytes: `${MARKER} 0026 02  0000 000f  80 0f 0c 0002 01 40 20010db800000000`,
    message: { type: "update", withdrawn: [], attributes: { mpUnreach: { afi: 2, safi: 1, withdrawn: ["2001:db8::/64"] } }, nlri: [] },
  },
  {
    name: "UPDATE: IPv4 withdrawal, and the end-of-RIB marker's shape (no attributes)",
    bytes: `${MARKER} 001c 02  0005 20c0a80a01 0000`,
    message: { type: "update", withdrawn: ["192.168.10.1/32"], attributes: {}, nlri: [] },
  },
  { name: "UPDATE: End-of-RIB for IPv4 unicast (RFC 4724)", bytes: `${MARKER} 0017 02 0000 0000`, message: { type: "update", withdrawn: [], attributes: {}, nlri: [] } },
  {
    name: "UPDATE: a 2-octet-AS session writes AS numbers in 2 octets",
    bytes: `${MARKER} 002e 02  0000 0012  40 01 01 00  40 02 04 02 01 fbf4  40 03 04 0a000002  ${NLRI_ONE}`,
    context: { fourOctetAs: false, external: true },
    message: { type: "update", withdrawn: [], attributes: { origin: "igp", asPath: [{ type: "sequence", asns: [64500] }], nextHop: "10.0.0.2" }, nlri: ["192.168.10.1/32"] },
  },
  {
    name: "UPDATE: an unknown optional transitive attribute is kept as received",
    bytes: `${MARKER} 0033 02  0000 0017  ${ORIGIN_IGP} ${AS_PATH_64500} ${NEXT_HOP} e0 63 00  ${NLRI_ONE}`,
    message: {
      type: "update",
      withdrawn: [],
      attributes: { origin: "igp", asPath: [{ type: "sequence", asns: [64500] }], nextHop: "10.0.0.2", unknown: [{ flags: 0xe0, code: 99, value: new Uint8Array(0) }] },
      nlri: ["192.168.10.1/32"],
    },
  },
  {
    name: "NOTIFICATION: Cease, Administrative Shutdown, with data",
    bytes: `${MARKER} 0017 03 06 02 6279`,
    message: { type: "notification", code: 6, subcode: 2, data: hex("6279") },
  },
  { name: "ROUTE-REFRESH: IPv6 unicast", bytes: `${MARKER} 0017 05 0002 00 01`, message: { type: "route-refresh", afi: 2, safi: 1, subtype: 0 } },
];

describe("codec fixtures", () => {
  for (const f of fixtures) {
    it(`decodes and re-encodes ${f.name}`, () => {
      const bytes = hex(f.bytes);
      const context = f.context ?? ebgp;
      assert.deepEqual(decodeMessage(bytes, context), f.message);
      assert.equal(toHex(encodeMessage(f.message, context)), toHex(bytes));
    });
  }
});

type ErrorRow = { name: string; bytes: Uint8Array; context?: UpdateContext } & (
  | { reset: [code: number, subcode: number] }
  | { withdraw: true; problem: RegExp }
  | { discard: RegExp; keeps?: (u: UpdateMessage) => void }
);

const errorRows: ErrorRow[] = [
  // Message header (RFC 4271 §6.1): always a session reset.
  { name: "a marker that is not all ones", bytes: hex(`ffffffffffffffffffffffffffff00ff 0013 04`), reset: [1, 1] },
  { name: "a length below the header's", bytes: hex(`${MARKER} 0012 04`), reset: [1, 2] },
  { name: "a length above 4096", bytes: hex(`${MARKER} 1001 02`), reset: [1, 2] },
  { name: "a KEEPALIVE with a body", bytes: hex(`${MARKER} 0014 04 00`), reset: [1, 2] },
  { name: "an unknown message type", bytes: hex(`${MARKER} 0013 09`), reset: [1, 3] },
  { name: "an UPDATE shorter than 23 octets", bytes: hex(`${MARKER} 0016 02 000000`), reset: [1, 2] },
  { name: "a header length that disagrees with the message", bytes: hex(`${MARKER} 0018 02 0000 0000`), reset: [1, 2] },
  // OPEN (RFC 4271 §6.2).
  { name: "BGP version 3", bytes: hex(`${MARKER} 001d 01 03 fbf4 005a 0a000002 00`), reset: [2, 1] },
  { name: "a hold time of 2 s", bytes: hex(`${MARKER} 001d 01 04 fbf4 0002 0a000002 00`), reset: [2, 6] },
  { name: "an optional parameter other than capabilities", bytes: hex(`${MARKER} 001f 01 04 fbf4 005a 0a000002 02 01 00`), reset: [2, 4] },
  { name: "optional parameters overrunning the OPEN", bytes: hex(`${MARKER} 001f 01 04 fbf4 005a 0a000002 02 02 05`), reset: [2, 0] },
  { name: "a multiprotocol capability of 3 octets", bytes: hex(`${MARKER} 0024 01 04 fbf4 005a 0a000002 07 02 05 01 03 000101`), reset: [2, 0] },
  // ROUTE-REFRESH (RFC 7313 §5).
  { name: "a ROUTE-REFRESH of 5 octets", bytes: hex(`${MARKER} 0018 05 0001 00 01 00`), reset: [7, 1] },
  // UPDATE: what RFC 7606 keeps resetting the session for.
  { name: "withdrawn routes overrunning the message", bytes: hex(`${MARKER} 0017 02 0009 0000`), reset: [3, 1] },
  { name: "total path attribute length overrunning the message", bytes: hex(`${MARKER} 0017 02 0000 0009`), reset: [3, 1] },
  { name: "an NLRI prefix longer than 32 bits", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} ${NEXT_HOP}`, "21 c0a80a0100"), reset: [3, 10] },
  { name: "an NLRI prefix cut short", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} ${NEXT_HOP}`, "18 c0a8"), reset: [3, 10] },
  { name: "a withdrawn prefix cut short", bytes: update("", "", "20 c0a8"), reset: [3, 10] },
  { name: "an unrecognized well-known attribute", bytes: update(`${ORIGIN_IGP} 40 63 00`), reset: [3, 2] },
  { name: "MP_REACH_NLRI twice", bytes: update(`80 0e 09 0001 01 04 0a000002 00  80 0e 09 0001 01 04 0a000002 00`), reset: [3, 1] },
  { name: "MP_UNREACH_NLRI twice", bytes: update(`80 0f 03 0002 01  80 0f 03 0002 01`), reset: [3, 1] },
  { name: "MP_REACH_NLRI whose NLRI cannot be parsed", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} 80 0e 16 0002 01 10 fd000000000000000000000000000002 00 81`), reset: [3, 9] },
  { name: "MP_REACH_NLRI whose next hop overruns it", bytes: update(`80 0e 06 0002 01 10 fd00`), reset: [3, 9] },
  { name: "MP_UNREACH_NLRI whose withdrawn routes cannot be parsed", bytes: update(`80 0f 05 0002 01 40 2001`), reset: [3, 9] },
  { name: "MP_REACH_NLRI flagged transitive", bytes: update(`c0 0f 03 0002 01`), reset: [3, 9] },
  { name: "an attribute overrunning the attributes, with no prefix to withdraw", bytes: update(`${ORIGIN_IGP} 40 02 09 02 01`), reset: [3, 1] },
  // UPDATE: treat-as-withdraw (RFC 7606 §7).
  { name: "an undefined ORIGIN", bytes: update(`40 01 01 03 ${AS_PATH_64500} ${NEXT_HOP}`, NLRI_ONE), withdraw: true, problem: /ORIGIN: undefined value 3/ },
  { name: "an ORIGIN of 2 octets", bytes: update(`40 01 02 0000 ${AS_PATH_64500} ${NEXT_HOP}`, NLRI_ONE), withdraw: true, problem: /ORIGIN: length 2/ },
  { name: "ORIGIN flagged optional", bytes: update(`c0 01 01 00 ${AS_PATH_64500} ${NEXT_HOP}`, NLRI_ONE), withdraw: true, problem: /ORIGIN: flags 0xc0/ },
  { name: "an AS_PATH segment of an undefined type", bytes: update(`${ORIGIN_IGP} 40 02 06 05 01 0000fbf4 ${NEXT_HOP}`, NLRI_ONE), withdraw: true, problem: /undefined segment type 5/ },
  { name: "an AS_PATH segment of length zero", bytes: update(`${ORIGIN_IGP} 40 02 02 02 00 ${NEXT_HOP}`, NLRI_ONE), withdraw: true, problem: /length zero/ },
  { name: "an AS_PATH segment overrunning the attribute", bytes: update(`${ORIGIN_IGP} 40 02 06 02 02 0000fbf4 ${NEXT_HOP}`, NLRI_ONE), withdraw: true, problem: /overruns/ },
  { name: "a confederation segment from an external peer", bytes: update(`${ORIGIN_IGP} 40 02 06 03 01 0000fbf4 ${NEXT_HOP}`, NLRI_ONE), withdraw: true, problem: /confederation/ },
  { name: "a NEXT_HOP of 5 octets", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} 40 03 05 0a00000200`, NLRI_ONE), withdraw: true, problem: /NEXT_HOP: length 5/ },
  { name: "a MED of 3 octets", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} ${NEXT_HOP} 80 04 03 000001`, NLRI_ONE), withdraw: true, problem: /MULTI_EXIT_DISC/ },
  { name: "a LOCAL_PREF of 2 octets", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} ${NEXT_HOP} 40 05 02 0064`, NLRI_ONE), context: ibgp, withdraw: true, problem: /LOCAL_PREF: length 2/ },
  { name: "COMMUNITIES of 5 octets", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} ${NEXT_HOP} c0 08 05 ffffff0200`, NLRI_ONE), withdraw: true, problem: /COMMUNITIES/ },
  { name: "empty COMMUNITIES", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} ${NEXT_HOP} c0 08 00`, NLRI_ONE), withdraw: true, problem: /COMMUNITIES/ },
  { name: "LARGE_COMMUNITY of 8 octets", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} ${NEXT_HOP} c0 20 08 0000fbf400000001`, NLRI_ONE), withdraw: true, problem: /LARGE_COMMUNITY/ },
  { name: "an IPv6 next hop of 5 octets in MP_REACH_NLRI", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} 80 0e 0d 0002 01 05 fd00000000 00 10 fd00`), withdraw: true, problem: /next hop length 5/ },
  { name: "a missing NEXT_HOP with IPv4 NLRI", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500}`, NLRI_ONE), withdraw: true, problem: /NEXT_HOP is missing/ },
  { name: "a missing ORIGIN", bytes: update(`${AS_PATH_64500} ${NEXT_HOP}`, NLRI_ONE), withdraw: true, problem: /ORIGIN is missing/ },
  { name: "an attribute overrunning the attributes, with NLRI to withdraw", bytes: update(`${ORIGIN_IGP} 40 02 09 02 01`, NLRI_ONE), withdraw: true, problem: /overruns the path attributes/ },
  // UPDATE: attribute-discard.
  {
    name: "an ATOMIC_AGGREGATE with a value",
    bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} ${NEXT_HOP} 40 06 01 00`, NLRI_ONE),
    discard: /ATOMIC_AGGREGATE: length 1/,
    keeps: (u) => assert.equal(u.attributes.atomicAggregate, undefined),
  },
  { name: "an AGGREGATOR of 5 octets", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} ${NEXT_HOP} c0 07 05 0000fbf400`, NLRI_ONE), discard: /AGGREGATOR/ },
  { name: "an AS4_PATH between 4-octet-AS speakers", bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} ${NEXT_HOP} c0 11 06 02 01 0000fbf4`, NLRI_ONE), discard: /AS4_PATH/ },
  {
    name: "a repeated ORIGIN (the first counts)",
    bytes: update(`${ORIGIN_IGP} 40 01 01 02 ${AS_PATH_64500} ${NEXT_HOP}`, NLRI_ONE),
    discard: /ORIGIN appears again/,
    keeps: (u) => assert.equal(u.attributes.origin, "igp"),
  },
  {
    name: "a LOCAL_PREF from an external peer",
    bytes: update(`${ORIGIN_IGP} ${AS_PATH_64500} ${NEXT_HOP} 40 05 04 00000064`, NLRI_ONE),
    discard: /LOCAL_PREF from an external peer/,
    keeps: (u) => {
      assert.equal(u.attributes.localPref, undefined);
      assert.deepEqual(u.nlri, ["192.168.10.1/32"]);
    },
  },
];

describe("malformed messages (RFC 4271 §6, RFC 7606)", () => {
  for (const row of errorRows) {
    const context = row.context ?? ebgp;
    if ("reset" in row) {
      it(`resets the session on ${row.name}: NOTIFICATION ${row.reset.join("/")}`, () => {
        assert.throws(
          () => decodeMessage(row.bytes, context),
          (err: unknown) => err instanceof BgpDecodeError && err.code === row.reset[0] && err.subcode === row.reset[1],
        );
      });
    } else if ("withdraw" in row) {
      it(`treats as withdrawn an UPDATE with ${row.name}`, () => {
        const u = decodeMessage(row.bytes, context) as UpdateMessage;
        assert.equal(u.treatAsWithdraw, true);
        assert.ok(u.problems?.some((p) => p.action === "treat-as-withdraw" && row.problem.test(p.reason)), JSON.stringify(u.problems));
      });
    } else {
      it(`discards the attribute and keeps the routes on ${row.name}`, () => {
        const u = decodeMessage(row.bytes, context) as UpdateMessage;
        assert.equal(u.treatAsWithdraw, undefined, JSON.stringify(u.problems));
        assert.ok(u.problems?.some((p) => p.action === "attribute-discard" && row.discard.test(p.reason)), JSON.stringify(u.problems));
        row.keeps?.(u);
      });
    }
  }

  it("gives the erroneous attribute as NOTIFICATION data for an unrecognized well-known attribute", () => {
    assert.throws(
      () => decodeMessage(update(`${ORIGIN_IGP} 40 63 02 abcd`), ebgp),
      (err: unknown) => err instanceof BgpDecodeError && toHex(err.data) === "406302abcd",
    );
  });
});

describe("encoding", () => {
  it("uses the extended length flag for attributes over 255 octets", () => {
    const communities = Array.from({ length: 70 }, (_, i) => 0xfde80000 + i);
    const message: Message = { type: "update", withdrawn: [], attributes: { origin: "igp", asPath: [], nextHop: "10.0.0.2", communities }, nlri: ["10.1.0.0/16"] };
    const bytes = encodeMessage(message, ebgp);
    const at = toHex(bytes).indexOf("d008");
    assert.ok(at > 0, "COMMUNITIES flags 0xd0 (optional, transitive, extended length)");
    assert.equal(toHex(bytes).slice(at + 4, at + 8), "0118", "280 octets");
    assert.deepEqual((decodeMessage(bytes, ebgp) as UpdateMessage).attributes.communities, communities);
  });

  it("clears host bits of prefixes as it writes them", () => {
    const bytes = encodeMessage({ type: "update", withdrawn: ["10.1.2.3/16"], attributes: {}, nlri: [] }, ebgp);
    assert.deepEqual((decodeMessage(bytes, ebgp) as UpdateMessage).withdrawn, ["10.1.0.0/16"]);
  });

  for (const [name, message] of [
    ["an AS above 32 bits", { type: "update", withdrawn: [], attributes: { asPath: [{ type: "sequence", asns: [2 ** 32] }] }, nlri: [] }],
    ["a 4-octet AS on a 2-octet session", { type: "update", withdrawn: [], attributes: { asPath: [{ type: "sequence", asns: [70000] }] }, nlri: [] }],
    ["an IPv6 prefix in the IPv4 NLRI field", { type: "update", withdrawn: [], attributes: {}, nlri: ["2001:db8::/32"] }],
    ["an IPv6 NEXT_HOP attribute", { type: "update", withdrawn: [], attributes: { nextHop: "fd00::1" }, nlri: [] }],
    ["a prefix that is not one", { type: "update", withdrawn: ["10.0.0.0/33"], attributes: {}, nlri: [] }],
    ["an UPDATE over 4096 octets", { type: "update", withdrawn: [], attributes: {}, nlri: Array.from({ length: 900 }, (_, i) => `10.${i >> 8}.${i & 255}.1/32`) }],
    ["a restart time over 4095 s", { type: "open", myAs: 1, holdTime: 90, routerId: "1.1.1.1", capabilities: [{ kind: "graceful-restart", restarting: false, restartTime: 5000, families: [] }] }],
  ] as [string, Message][]) {
    it(`refuses ${name}`, () => {
      const context = name.includes("2-octet") ? { fourOctetAs: false, external: true } : ebgp;
      assert.throws(() => encodeMessage(message, context), BgpEncodeError);
    });
  }
});

describe("FrameReader", () => {
  const keepalive = hex(`${MARKER} 0013 04`);
  const refresh = hex(`${MARKER} 0017 05 0001 00 01`);

  it("splits a stream into messages wherever the chunks break", () => {
    const stream = Buffer.concat([keepalive, refresh, keepalive]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const reader = new FrameReader();
      const frames = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
      assert.deepEqual(frames.map(toHex), [toHex(keepalive), toHex(refresh), toHex(keepalive)], `cut at ${cut}`);
      assert.equal(reader.pending, 0);
    }
  });

  it("rejects a bad header before its body arrives", () => {
    const reader = new FrameReader();
    assert.deepEqual(reader.push(hex(MARKER)), []);
    assert.throws(() => reader.push(hex("2000 02")), (err: unknown) => err instanceof BgpDecodeError && err.code === 1 && err.subcode === 2);
  });
});

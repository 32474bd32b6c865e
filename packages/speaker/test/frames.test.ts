import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalIP, formatIPv6, ipv6ToBytes } from "../src/l2/address-bytes.ts";
import {
  decodeArpFrame,
  decodeNdpFrame,
  encodeArpFrame,
  encodeNdpFrame,
  multicastMac,
  solicitedNodeAddress,
} from "../src/l2/frames.ts";

describe("IPv6 text", () => {
  const cases: Array<[string, string]> = [
    ["::", "::"],
    ["::1", "::1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["fe80::0001:0:0:0", "fe80::1:0:0:0"],
    ["fe80:0:0:1:0:0:0:0", "fe80:0:0:1::"],
    ["2001:db8:1:1:1:1:0:1", "2001:db8:1:1:1:1:0:1"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
  ];
  for (const [input, expected] of cases) {
    it(`${input} → ${expected}`, () => assert.equal(formatIPv6(ipv6ToBytes(input)), expected));
  }
  for (const bad of ["1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "1:2:3:4:5:6:7", "::g", ":::", "::1.2.3"]) {
    it(`rejects ${bad}`, () => assert.equal(canonicalIP(bad), null));
  }
});

describe("ARP codec", () => {
  const request = {
    destination: "ff:ff:ff:ff:ff:ff",
    source: "02:00:00:00:00:01",
    arp: { operation: 1 as const, senderMac: "02:00:00:00:00:01", senderIp: "192.168.1.10", targetMac: "00:00:00:00:00:00", targetIp: "192.168.1.240" },
  };

  it("round-trips a request, padded to 60 bytes", () => {
    const frame = encodeArpFrame(request);
    assert.equal(frame.length, 60);
    const decoded = decodeArpFrame(frame);
    assert.deepEqual(decoded, { ok: true, value: { ethernet: { destination: request.destination, source: request.source, ethertype: 0x0806 }, arp: request.arp } });
  });

  it("lays the request out as RFC 826 says", () => {
    const frame = encodeArpFrame(request);
    assert.equal(frame.subarray(0, 42).toString("hex"), "ffffffffffff0200000000010806" + "0001080006040001" + "020000000001c0a8010a" + "000000000000c0a801f0");
    assert.ok(frame.subarray(42).every((b) => b === 0));
  });

  const bad: Array<[string, (f: Buffer) => Buffer, string]> = [
    ["truncated", (f) => f.subarray(0, 41), "truncated"],
    ["IPv6 ethertype", (f) => {
      f.writeUInt16BE(0x86dd, 12);
      return f;
    }, "not-arp"],
    ["token-ring hardware", (f) => {
      f.writeUInt16BE(6, 14);
      return f;
    }, "unsupported"],
    ["operation 3", (f) => {
      f.writeUInt16BE(3, 20);
      return f;
    }, "unsupported"],
    ["hardware length 8", (f) => {
      f[18] = 8;
      return f;
    }, "unsupported"],
  ];
  for (const [name, mutate, reason] of bad) {
    it(`rejects ${name} as ${reason}`, () => {
      const result = decodeArpFrame(mutate(encodeArpFrame(request)));
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.reason, reason);
    });
  }
});

describe("NDP codec", () => {
  const solicitation = {
    destination: "33:33:ff:00:00:10",
    source: "02:00:00:00:00:01",
    sourceIp: "fd00::1",
    destinationIp: "ff02::1:ff00:10",
    message: { type: "solicitation" as const, targetIp: "fd00::10", sourceLinkAddress: "02:00:00:00:00:01" },
  };
  const advertisement = {
    destination: "33:33:00:00:00:01",
    source: "02:00:00:00:00:02",
    sourceIp: "fe80::2",
    destinationIp: "ff02::1",
    message: { type: "advertisement" as const, targetIp: "fd00::10", router: false, solicited: false, override: true, targetLinkAddress: "02:00:00:00:00:02" },
  };

  it("round-trips a solicitation", () => {
    const frame = encodeNdpFrame(solicitation);
    assert.equal(frame.length, 86);
    const decoded = decodeNdpFrame(frame);
    assert.ok(decoded.ok, JSON.stringify(decoded));
    assert.deepEqual(decoded.value.message, solicitation.message);
    assert.equal(decoded.value.hopLimit, 255);
    assert.equal(decoded.value.sourceIp, "fd00::1");
    assert.equal(decoded.value.destinationIp, "ff02::1:ff00:10");
  });

  it("round-trips an unsolicited advertisement with Override", () => {
    const decoded = decodeNdpFrame(encodeNdpFrame(advertisement));
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value.message, advertisement.message);
  });

  it("encodes a DAD solicitation (from ::, no option) in its 78-byte minimum", () => {
    const dad = { ...solicitation, sourceIp: "::", message: { ...solicitation.message, sourceLinkAddress: null } };
    const frame = encodeNdpFrame(dad);
    assert.equal(frame.length, 78);
    const decoded = decodeNdpFrame(frame);
    assert.ok(decoded.ok);
    assert.equal(decoded.value.message.type, "solicitation");
  });

  const bad: Array<[string, (f: Buffer) => Buffer, string]> = [
    ["a flipped payload bit", (f) => {
      f[70] = (f[70] as number) ^ 1;
      return f;
    }, "bad-checksum"],
    ["hop limit 64", (f) => {
      f[21] = 64;
      return f;
    }, "invalid"],
    ["a truncated frame", (f) => f.subarray(0, 70), "truncated"],
    ["a payload length past the frame", (f) => {
      f.writeUInt16BE(200, 18);
      return f;
    }, "truncated"],
    ["ICMPv6 echo", (f) => {
      f[54] = 128;
      return f;
    }, "unsupported"],
    ["UDP", (f) => {
      f[20] = 17;
      return f;
    }, "unsupported"],
    ["IPv4 ethertype", (f) => {
      f.writeUInt16BE(0x0800, 12);
      return f;
    }, "not-ipv6"],
  ];
  for (const [name, mutate, reason] of bad) {
    it(`rejects ${name} as ${reason}`, () => {
      const result = decodeNdpFrame(mutate(encodeNdpFrame(solicitation)));
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.reason, reason);
    });
  }

  it("maps addresses to solicited-node groups and multicast MACs", () => {
    assert.equal(solicitedNodeAddress("2001:db8::1:2345:6789"), "ff02::1:ff45:6789");
    assert.equal(multicastMac("ff02::1:ff45:6789"), "33:33:ff:45:67:89");
    assert.equal(multicastMac("ff02::1"), "33:33:00:00:00:01");
  });
});

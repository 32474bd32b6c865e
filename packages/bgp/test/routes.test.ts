// planUpdates: a table of routes into UPDATEs — grouped by attributes, split to fit 4096 octets, nothing lost.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeMessage, encodeMessage, type OutboundContext, planUpdates, type Route, type UpdateMessage } from "@bollard/bgp";

const out: OutboundContext = {
  fourOctetAs: true,
  external: true,
  localAsn: 64500,
  localAddresses: { ipv4: "10.0.0.2", ipv6: "fd00::2" },
  families: [
    { afi: 1, safi: 1 },
    { afi: 2, safi: 1 },
  ],
};

function announced(updates: UpdateMessage[]): string[] {
  return updates.flatMap((u) => {
    const bytes = encodeMessage(u, out);
    assert.ok(bytes.length <= 4096, `${bytes.length} octets`);
    const back = decodeMessage(bytes, out) as UpdateMessage;
    return [...back.nlri, ...(back.attributes.mpReach?.nlri ?? [])];
  });
}

describe("planUpdates", () => {
  it("splits 2,000 routes of two families into messages of at most 4096 octets, losing none", () => {
    const routes: Route[] = [];
    for (let i = 0; i < 1000; i++) routes.push({ prefix: `10.${i >> 8}.${i & 255}.1/32` }, { prefix: `fd00:1::${(i + 1).toString(16)}/128` });
    const { updates, skipped } = planUpdates(routes, [], out);
    assert.deepEqual(skipped, []);
    assert.ok(updates.length > 2 && updates.length < 20, `${updates.length} messages`);
    assert.deepEqual(announced(updates).sort(), routes.map((r) => r.prefix).sort());
  });

  it("groups routes by attributes: different communities, different messages", () => {
    const { updates } = planUpdates([{ prefix: "10.0.0.1/32", communities: [1] }, { prefix: "10.0.0.2/32", communities: [1] }, { prefix: "10.0.0.3/32", communities: [2] }], [], out);
    assert.deepEqual(updates.map((u) => u.nlri), [["10.0.0.1/32", "10.0.0.2/32"], ["10.0.0.3/32"]]);
  });

  it("withdraws IPv4 in the Withdrawn Routes field and IPv6 in MP_UNREACH_NLRI", () => {
    const { updates } = planUpdates([], ["10.0.0.1/32", "fd00::1/128"], out);
    assert.deepEqual(updates, [
      { type: "update", withdrawn: ["10.0.0.1/32"], attributes: {}, nlri: [] },
      { type: "update", withdrawn: [], attributes: { mpUnreach: { afi: 2, safi: 1, withdrawn: ["fd00::1/128"] } }, nlri: [] },
    ]);
  });

  it("skips, with the reason, a family the peer did not agree to and a route with no next hop of its family", () => {
    const v4only = { ...out, families: [{ afi: 1, safi: 1 }] };
    assert.deepEqual(planUpdates([{ prefix: "fd00::1/128" }], [], v4only).skipped, [{ prefix: "fd00::1/128", reason: "IPv6 unicast was not negotiated with the peer" }]);
    const noV6 = { ...out, localAddresses: { ipv4: "10.0.0.2" } };
    assert.deepEqual(planUpdates([{ prefix: "fd00::1/128" }], [], noV6).skipped, [{ prefix: "fd00::1/128", reason: "no IPv6 next hop" }]);
  });
});

// The lab network is real and closed: hosts reach each other over the bridge, nothing has a route beyond the
// lab subnet, and teardown leaves nothing behind.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createLabNetwork, destroyLabNetwork, type LabNetwork } from "../src/network/topology.ts";
import { execIn, ip } from "../src/network/exec.ts";

describe("lab network", () => {
  let lab: LabNetwork;
  before(async () => {
    lab = await createLabNetwork({ nodes: 2 });
  });
  after(async () => {
    if (lab) await destroyLabNetwork(lab.id, 2);
  });

  it("joins node1, node2 and client on one layer-2 segment", async () => {
    assert.equal(lab.nodes.length, 2);
    for (const node of lab.nodes) {
      const res = await execIn(lab.client.netns, "ping", ["-c", "1", "-W", "2", node.ipv4]);
      assert.match(res.stdout, /1 received/);
    }
    const neigh = JSON.parse((await execIn(lab.client.netns, "ip", ["-j", "neigh", "show", lab.nodes[0]!.ipv4])).stdout);
    assert.equal(neigh[0].lladdr, lab.nodes[0]!.mac, "the client learned node1's MAC over ARP");
  });

  it("gives each host the addresses it reports, in the kernel's own text form", async () => {
    for (const host of [...lab.nodes, lab.client]) {
      const links = JSON.parse((await execIn(host.netns, "ip", ["-j", "addr", "show", "dev", host.ifname])).stdout) as Array<{ addr_info: Array<{ local: string }> }>;
      const locals = links.flatMap((l) => l.addr_info.map((a) => a.local));
      assert.ok(locals.includes(host.ipv4), `${host.name}: ${host.ipv4} in ${locals.join(", ")}`);
      assert.ok(locals.includes(host.ipv6), `${host.name}: ${host.ipv6} in ${locals.join(", ")}`);
    }
  });

  it("has no route out of the lab", async () => {
    for (const host of [...lab.nodes, lab.client]) {
      const routes = JSON.parse((await execIn(host.netns, "ip", ["-j", "route", "show"])).stdout) as { dst: string }[];
      assert.deepEqual(routes.map((r) => r.dst), [`${lab.prefixV4}.0/24`], `${host.name} routes`);
      const out = await execIn(host.netns, "ip", ["route", "get", "1.1.1.1"], { allowFailure: true });
      assert.notEqual(out.code, 0, `${host.name} must not route to 1.1.1.1`);
    }
  });

  it("removes every namespace and the host interface on teardown", async () => {
    const other = await createLabNetwork({ nodes: 1 });
    await destroyLabNetwork(other.id, 1);
    const left = (await ip(["netns", "list"])).stdout;
    assert.ok(!left.includes(`bollard-${other.id}-`), left);
    const link = await ip(["link", "show", other.hostIfname], { allowFailure: true });
    assert.notEqual(link.code, 0);
  });
});

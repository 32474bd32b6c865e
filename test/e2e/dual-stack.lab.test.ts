// The user story in a dual-stack lab (`bollard lab up --ip-family dual`): the ingress's Service is RequireDualStack,
// the pool has an IPv4 and an IPv6 range, and from the client — outside the cluster — `curl -4` and `curl -6` both
// reach demo.local, through ARP and NDP answered by the one elected node.
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Lab, labPoolManifest, startLab } from "@bollard/lab";
import { arpingMAC, curl, electedNode, eventually, serviceIPs } from "./helpers.ts";

const root = resolve(import.meta.dirname, "../..");

/** The MAC that answers a neighbour solicitation for `ip`, as the client sees it (ndisc6), or undefined. */
async function ndiscMAC(lab: Lab, ip: string): Promise<string | undefined> {
  const res = await lab.execClient("ndisc6", ["-1", "-r", "2", "-w", "1000", ip, lab.network.client.ifname], { allowFailure: true });
  return /Target link-layer address:\s*([0-9a-f]{2}(?::[0-9a-f]{2}){5})/i.exec(res.stdout)?.[1]?.toLowerCase();
}

describe("the user story in a dual-stack lab", { timeout: 600_000 }, () => {
  let lab: Lab;
  let v4 = "";
  let v6 = "";

  before(async () => {
    lab = await startLab({ nodes: 2, ipFamily: "dual", log: (l) => process.stdout.write(`# lab: ${l}\n`) });
  });
  after(async () => {
    if (lab) await lab.down();
  });

  it("gives the ingress's RequireDualStack Service one address of each family, IPv4 first", async () => {
    const pool = labPoolManifest(lab.network.prefixV4, { ipFamily: "dual", prefixV6: lab.network.prefixV6 });
    const applied = await lab.kubectl(["apply", "-f", "-"], pool);
    assert.equal(applied.code, 0, applied.stderr);
    await lab.kubectl(["apply", "-f", join(root, "examples/demo-app.yaml")]);
    const addresses = await eventually("two addresses for the ingress's Service", async () => {
      const ips = await serviceIPs(lab, "metallb-system", "bollard-ingress");
      return ips.length === 2 ? ips : undefined;
    }, 60_000);
    [v4, v6] = addresses as [string, string];
    assert.ok(v4.startsWith(`${lab.network.prefixV4}.2`), `${v4} is the pool's IPv4`);
    assert.ok(v6.startsWith(lab.network.prefixV6), `${v6} is the pool's IPv6`);
    const families = JSON.parse((await lab.kubectl(["get", "svc", "-n", "metallb-system", "bollard-ingress", "-o", "jsonpath={.spec.ipFamilies}"])).stdout);
    assert.deepEqual(families, ["IPv4", "IPv6"]);
    await eventually("both addresses in the Ingress's status", async () => {
      const ing = JSON.parse((await lab.kubectl(["get", "ingress", "demo", "-o", "json"])).stdout);
      const published = (ing.status?.loadBalancer?.ingress ?? []).map((i: { ip: string }) => i.ip);
      return published.includes(v4) && published.includes(v6) ? true : undefined;
    });
  });

  it("answers curl -4 and curl -6 from the client, from both backends", async () => {
    const bodies = new Set<string>();
    for (const [flag, address] of [["-4", v4], ["-6", `[${v6}]`]] as const) {
      await eventually(`demo.local over ${flag}`, async () => {
        const r = await curl(lab, [flag, "--resolve", `demo.local:80:${address}`, "http://demo.local/"]);
        return r.code === 0 && /^demo-node\d$/.test(r.body) ? true : undefined;
      }, 60_000);
      for (let i = 0; i < 8; i++) {
        const r = await curl(lab, [flag, "--resolve", `demo.local:80:${address}`, "http://demo.local/"]);
        assert.equal(r.code, 0, `curl ${flag} ${address}: ${r.body}`);
        assert.match(r.body, /^demo-node\d$/);
        bodies.add(r.body);
      }
    }
    assert.deepEqual([...bodies].sort(), ["demo-node1", "demo-node2"], "both backends answer");
  });

  it("announces both families from one node: the elected one answers ARP for the IPv4 and NDP for the IPv6 address", async () => {
    // Elected on the first address (IPv4), so both families of the Service stay on one node, as MetalLB does.
    const elected = electedNode(lab.network.nodes.map((n) => n.name), v4);
    const mac = lab.network.nodes.find((n) => n.name === elected)?.mac;
    assert.ok(mac);
    assert.equal(await arpingMAC(lab, v4), mac, `ARP for ${v4} answered by ${elected}`);
    assert.equal(await ndiscMAC(lab, v6), mac, `NDP for ${v6} answered by ${elected}`);
  });
});

describe("the user story in an IPv6-only lab", { timeout: 600_000 }, () => {
  let lab: Lab;

  before(async () => {
    lab = await startLab({ nodes: 2, ipFamily: "ipv6", log: (l) => process.stdout.write(`# lab: ${l}\n`) });
  });
  after(async () => {
    if (lab) await lab.down();
  });

  it("serves demo.local over curl -6 through the IPv6 address the elected node announces with NDP", async () => {
    const applied = await lab.kubectl(["apply", "-f", "-"], labPoolManifest(lab.network.prefixV4, { ipFamily: "ipv6", prefixV6: lab.network.prefixV6 }));
    assert.equal(applied.code, 0, applied.stderr);
    await lab.kubectl(["apply", "-f", join(root, "examples/demo-app.yaml")]);
    const [v6, ...more] = await eventually("an address for the ingress's Service", async () => {
      const ips = await serviceIPs(lab, "metallb-system", "bollard-ingress");
      return ips.length > 0 ? ips : undefined;
    }, 60_000);
    assert.deepEqual(more, []);
    assert.ok(v6?.startsWith(lab.network.prefixV6), `${v6} is the pool's IPv6`);
    await eventually("demo.local over -6", async () => {
      const r = await curl(lab, ["-6", "--resolve", `demo.local:80:[${v6}]`, "http://demo.local/"]);
      return r.code === 0 && /^demo-node\d$/.test(r.body) ? true : undefined;
    }, 60_000);
    const elected = electedNode(lab.network.nodes.map((n) => n.name), v6 as string);
    assert.equal(await ndiscMAC(lab, v6 as string), lab.network.nodes.find((n) => n.name === elected)?.mac);
  });
});

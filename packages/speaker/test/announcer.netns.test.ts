// The announcer on real interfaces: a lab network (bridge + node1 + node2 + client), the announcer running
// in node1 and node2 as nobody with only CAP_NET_RAW, and the client's own tools (arping, ndisc6, ping,
// ip neigh) checking what the LAN sees.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLabNetwork, destroyLabNetwork, execIn, type LabNetwork } from "@bollard/lab";
import { arpingMacs, lineReader, NET_RAW_ONLY, ndisc6Mac, neighbourMac, spawnInNetns, stopProcess, waitFor } from "./helpers/netns.ts";

const helper = join(import.meta.dirname, "helpers", "announcer-process.ts");

interface Announcer {
  child: ChildProcess;
  own(addresses: Array<{ ip: string; service: string; interfaces: "all" | string[] }>): Promise<{ outcomes: Array<{ ip: string; interfaces: string[] }>; uid: number }>;
}

function startAnnouncer(netns: string): Announcer {
  const child = spawnInNetns(netns, [...NET_RAW_ONLY, process.execPath, helper]);
  const next = lineReader(child);
  return {
    child,
    async own(addresses) {
      child.stdin?.write(`${JSON.stringify(addresses)}\n`);
      return JSON.parse(await next());
    },
  };
}

describe("announcer in network namespaces", () => {
  let net: LabNetwork;
  const announcers: Announcer[] = [];
  let vip4: string;
  let vip6: string;

  before(async () => {
    net = await createLabNetwork({ nodes: 2 });
    vip4 = `${net.prefixV4}.200`;
    vip6 = `${net.prefixV6}200`;
  });
  after(async () => {
    await Promise.allSettled(announcers.map((a) => stopProcess(a.child)));
    if (net) await destroyLabNetwork(net.id, 2);
  });

  it("node1 answers ARP and NDP for its addresses with its MAC, as nobody with CAP_NET_RAW", async () => {
    const [node1, node2] = net.nodes as [LabNetwork["nodes"][0], LabNetwork["nodes"][0]];
    const a1 = startAnnouncer(node1.netns);
    const a2 = startAnnouncer(node2.netns);
    announcers.push(a1, a2);
    const owned = [
      { ip: vip4, service: "default/web", interfaces: "all" as const },
      { ip: vip6, service: "default/web", interfaces: "all" as const },
    ];
    const first = await a1.own(owned);
    assert.equal(first.uid, 65534, "runs as nobody");
    assert.deepEqual(
      first.outcomes.map((o) => [o.ip, o.interfaces]),
      [
        [vip4, ["eth0"]],
        [vip6, ["eth0"]],
      ],
    );
    await a2.own([]);

    const macs = await arpingMacs(net.client.netns, net.client.ifname, vip4);
    assert.ok(macs.length > 0, "arping got answers");
    assert.deepEqual([...new Set(macs)], [node1.mac], "only node1 answers");

    await execIn(net.client.netns, "ping", ["-c", "1", "-W", "1", vip4], { allowFailure: true });
    assert.equal(await neighbourMac(net.client.netns, vip4), node1.mac);

    assert.equal(await ndisc6Mac(net.client.netns, net.client.ifname, vip6), node1.mac);
    await execIn(net.client.netns, "ping", ["-6", "-c", "1", "-W", "1", vip6], { allowFailure: true });
    assert.equal(await neighbourMac(net.client.netns, vip6), node1.mac);
  });

  it("an address not owned is never answered", async () => {
    const macs = await arpingMacs(net.client.netns, net.client.ifname, `${net.prefixV4}.201`, 2);
    assert.deepEqual(macs, []);
    assert.equal(await ndisc6Mac(net.client.netns, net.client.ifname, `${net.prefixV6}201`), undefined);
  });

  it("on take-over the gratuitous ARP/NA moves the client's existing entries to node2, and node1 goes silent", async () => {
    const [a1, a2] = announcers as [Announcer, Announcer];
    const node2 = net.nodes[1] as LabNetwork["nodes"][0];
    assert.ok(await neighbourMac(net.client.netns, vip4), "the client has an entry to update");
    await a1.own([]);
    await a2.own([
      { ip: vip4, service: "default/web", interfaces: "all" },
      { ip: vip6, service: "default/web", interfaces: "all" },
    ]);
    // The client sends nothing here: only node2's gratuitous frames can change its entries.
    await waitFor("the client's IPv4 entry to point at node2", async () => ((await neighbourMac(net.client.netns, vip4)) === node2.mac ? true : undefined));
    await waitFor("the client's IPv6 entry to point at node2", async () => ((await neighbourMac(net.client.netns, vip6)) === node2.mac ? true : undefined));
    assert.deepEqual([...new Set(await arpingMacs(net.client.netns, net.client.ifname, vip4))], [node2.mac]);
  });

  it("an L2Advertisement naming an interface that does not exist announces nothing", async () => {
    const [, a2] = announcers as [Announcer, Announcer];
    const { outcomes } = await a2.own([{ ip: vip4, service: "default/web", interfaces: ["eth9"] }]);
    assert.deepEqual(outcomes[0]?.interfaces, []);
    assert.deepEqual(await arpingMacs(net.client.netns, net.client.ifname, vip4, 2), []);
  });
});

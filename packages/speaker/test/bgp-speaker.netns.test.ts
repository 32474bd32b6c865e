// BGP mode of the whole speaker: two real `bollard speaker` processes (nobody + CAP_NET_RAW) in the lab's node
// namespaces, a real kube-apiserver, and a real FRR (zebra + bgpd + bfdd) in a router namespace on the same LAN.
// MetalLB objects applied as users write them — BGPPeer v1beta2 with passwordSecret (TCP MD5), bfdProfile and
// graceful restart, a BFDProfile, a Community alias, a BGPAdvertisement — and the router's own view checked: both
// nodes' sessions, the Service's IPv4 and IPv6 addresses with two next hops (ECMP, in the router's kernel too),
// the community, ServiceBGPStatus per node, Events and metrics, the last valid configuration kept when a bad one
// arrives, externalTrafficPolicy Local, a SIGTERM that keeps the routes (graceful restart) and a lost node (link
// down) that BFD withdraws.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { execIn, type FrrRouter, ip, type LabHost, startFrrRouter } from "@bollard/lab";
import { waitFor } from "./helpers/netns.ts";
import { NS, type SpeakerLab, startSpeakerLab } from "./helpers/speaker-lab.ts";

const MD5 = "s3cret-md5";
const BGP = `/apis/metallb.io/v1beta2/namespaces/${NS}/bgppeers`;
const V1 = `/apis/metallb.io/v1beta1/namespaces/${NS}`;

type BgpStatus = { metadata: { labels?: Record<string, string> }; status?: { node?: string; serviceName?: string; serviceNamespace?: string; peers?: string[] } };

describe("bollard speaker in BGP mode against FRR", () => {
  let lab: SpeakerLab;
  let router: FrrRouter;
  let routerNs: string;
  let routerV4: string;
  let routerV6: string;
  let dir: string;
  let node1: LabHost;
  let node2: LabHost;
  const cleanups: (() => Promise<unknown> | unknown)[] = [];

  /** An address as FRR and ip print it (the lab's IPv6 prefix may have a leading zero in a group). */
  const canonical = (address: string) => (address.includes(":") ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address);
  /** Next hops the router's BGP table has for a prefix, sorted. */
  const nextHops = async (prefix: string) => (await router.paths(prefix)).map((p) => p.nextHop).sort();
  const kernelNextHops = async (address: string) => {
    const routes = JSON.parse((await execIn(routerNs, "ip", ["-j", address.includes(":") ? "-6" : "-4", "route", "show", address])).stdout) as {
      gateway?: string;
      nexthops?: { gateway: string }[];
    }[];
    return routes.flatMap((r) => (r.nexthops ? r.nexthops.map((n) => n.gateway) : r.gateway ? [r.gateway] : [])).sort();
  };
  const statuses = async () => (await lab.api<{ items: BgpStatus[] }>("GET", `${V1}/servicebgpstatuses`)).items;
  const events = async (reason: string, kind: string) =>
    (await lab.api<{ items: { reason?: string; note?: string; regarding?: { kind?: string; name?: string } }[] }>("GET", `/apis/events.k8s.io/v1/events`)).items.filter(
      (e) => e.reason === reason && e.regarding?.kind === kind,
    );

  before(async () => {
    lab = await startSpeakerLab();
    cleanups.push(() => lab.close());
    [node1, node2] = lab.net.nodes as [LabHost, LabHost];
    // BGP only: no layer-2 announcements in this test.
    await lab.api("DELETE", `${V1}/l2advertisements/lab`);

    routerNs = `bgp2-${randomBytes(3).toString("hex")}-rt`;
    routerV4 = `${lab.net.prefixV4}.250`;
    routerV6 = `${lab.net.prefixV6}fa`;
    await ip(["netns", "add", routerNs]);
    cleanups.push(() => ip(["netns", "del", routerNs], { allowFailure: true }));
    await ip(["-n", lab.net.switchNetns, "link", "add", "p-router", "type", "veth", "peer", "name", "eth0", "netns", routerNs]);
    await ip(["-n", lab.net.switchNetns, "link", "set", "p-router", "master", "br0", "up"]);
    await ip(["-n", routerNs, "link", "set", "lo", "up"]);
    await ip(["-n", routerNs, "addr", "add", `${routerV4}/24`, "dev", "eth0"]);
    await ip(["-n", routerNs, "addr", "add", `${routerV6}/64`, "dev", "eth0", "nodad"]);
    await ip(["-n", routerNs, "link", "set", "eth0", "up"]);
    dir = mkdtempSync(join(tmpdir(), "bgp2-frr-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // MetalLB's default timers (300 ms × 3): sub-second, and not so tight that a loaded test machine flaps.
    const bfd = { receiveMs: 300, transmitMs: 300, multiplier: 3 };
    router = await startFrrRouter({
      netns: routerNs,
      dir,
      asn: 64501,
      routerId: routerV4,
      gracefulRestart: true,
      neighbors: [
        ...lab.net.nodes.map((n) => ({ address: n.ipv4, asn: 64500, password: MD5, bfd })),
        ...lab.net.nodes.map((n) => ({ address: n.ipv6, asn: 64500 })),
      ],
    });
    cleanups.push(() => router.stop());

    await lab.api("POST", `/api/v1/namespaces/${NS}/secrets`, { metadata: { name: "bgp-auth" }, type: "kubernetes.io/basic-auth", stringData: { password: MD5 } });
    await lab.api("POST", `${V1}/bfdprofiles`, { apiVersion: "metallb.io/v1beta1", kind: "BFDProfile", metadata: { name: "fast" }, spec: { receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3 } });
    await lab.api("POST", BGP, {
      apiVersion: "metallb.io/v1beta2",
      kind: "BGPPeer",
      metadata: { name: "router" },
      spec: { myASN: 64500, peerASN: 64501, peerAddress: routerV4, passwordSecret: { name: "bgp-auth" }, bfdProfile: "fast", enableGracefulRestart: true, holdTime: "9s" },
    });
    // A v1beta1 object, as older manifests have it: served, stored as v1beta2.
    await lab.api("POST", `${V1}/bgppeers`, { apiVersion: "metallb.io/v1beta1", kind: "BGPPeer", metadata: { name: "router-v6" }, spec: { myASN: 64500, peerASN: 64501, peerAddress: routerV6 } });
    await lab.api("POST", `${V1}/communities`, { apiVersion: "metallb.io/v1beta1", kind: "Community", metadata: { name: "aliases" }, spec: { communities: [{ name: "no-advertise", value: "65535:65282" }] } });
    await lab.api("POST", `${V1}/bgpadvertisements`, {
      apiVersion: "metallb.io/v1beta1",
      kind: "BGPAdvertisement",
      metadata: { name: "lab" },
      spec: { ipAddressPools: ["lab"], communities: ["no-advertise", "64500:7"], peers: ["router", "router-v6"] },
    });
    lab.startSpeakers(lab.net.nodes);
  });
  after(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch((err) => process.stderr.write(`cleanup: ${err}\n`));
  });

  it("both nodes peer (MD5, BFD) and the router has the Service's addresses over both: ECMP in its RIB and kernel", async () => {
    await waitFor("four sessions Established", async () => ((await router.established()).length === 4 ? true : undefined), 60_000);
    const v4 = `${lab.vip4}/32`;
    const v6 = `${lab.vip6}/128`;
    await waitFor("two IPv4 paths", async () => ((await nextHops(v4)).length === 2 ? true : undefined));
    assert.deepEqual(await nextHops(v4), [node1.ipv4, node2.ipv4].sort());
    assert.ok((await router.paths(v4)).every((p) => p.multipath), "both paths are used (multipath)");
    await waitFor("two IPv6 paths", async () => ((await nextHops(v6)).length === 2 ? true : undefined));
    assert.deepEqual(await nextHops(v6), [canonical(node1.ipv6), canonical(node2.ipv6)].sort());
    await waitFor("the kernel route over both nodes", async () => ((await kernelNextHops(lab.vip4)).length === 2 ? true : undefined));
    assert.deepEqual(await kernelNextHops(lab.vip4), [node1.ipv4, node2.ipv4].sort());
    const detail = JSON.parse(await router.vtysh("bgpd", `show bgp ipv4 unicast ${v4} json`)) as { paths: { community?: { string?: string } }[] };
    assert.deepEqual(detail.paths.map((p) => p.community?.string).sort(), ["64500:7 no-advertise", "64500:7 no-advertise"]);
    const bfdPeers = await waitFor("BFD up with both nodes", async () => {
      const peers = JSON.parse(await router.vtysh("bfdd", "show bfd peers json")) as { peer: string; status: string }[];
      return peers.filter((p) => p.status === "up").length === 2 ? peers : undefined;
    }).catch((err) => {
      const frrLog = readFileSync(join(dir, "bfdd.log"), "utf8").split("\n").filter((l) => !l.includes("no session found")).slice(-80).join("\n");
      throw new Error(`${err.message}\nFRR bfdd:\n${frrLog}\n${lab.net.nodes.flatMap((n) => lab.logs(n).filter((l) => /bfd|BFD/.test(JSON.stringify(l)))).map((l) => JSON.stringify(l)).join("\n")}`);
    });
    assert.deepEqual(bfdPeers.filter((p) => p.status === "up").map((p) => p.peer).sort(), [node1.ipv4, node2.ipv4].sort());
  });

  it("writes a ServiceBGPStatus per node naming the peers, Events and MetalLB's metrics", async () => {
    await waitFor("two ServiceBGPStatus objects", async () => ((await statuses()).filter((s) => s.status?.node).length === 2 ? true : undefined));
    assert.deepEqual(
      (await statuses()).map((s) => s.status).sort((a, b) => (a?.node ?? "").localeCompare(b?.node ?? "")),
      lab.net.nodes.map((n) => ({ node: n.name, serviceName: "web", serviceNamespace: "default", peers: ["router", "router-v6"] })),
    );
    await waitFor("sessionUp events", async () => ((await events("sessionUp", "BGPPeer")).length >= 2 ? true : undefined));
    const assigned = (await events("nodeAssigned", "Service")).map((e) => e.note);
    for (const n of lab.net.nodes) assert.ok(assigned.includes(`announcing from node "${n.name}" with protocol "bgp"`), assigned.join("\n"));
    for (const n of lab.net.nodes) {
      assert.equal(await lab.metric(n, "bollard_speaker_bgp_session_up", { peer: routerV4 }), 1);
      assert.equal(await lab.metric(n, "bollard_speaker_bgp_session_up", { peer: routerV6 }), 1);
      assert.equal(await lab.metric(n, "bollard_speaker_bgp_announced_prefixes_total", { peer: routerV4 }), 1);
      assert.equal(await lab.metric(n, "bollard_speaker_bgp_announced_prefixes_total", { peer: routerV6 }), 1);
      assert.equal(await lab.metric(n, "bollard_speaker_bgp_pending_prefixes_total"), 0);
      assert.ok((await lab.metric(n, "bollard_speaker_bgp_updates_total", { peer: routerV4 })) >= 2, "the route and End-of-RIB");
      assert.equal(await lab.metric(n, "bollard_speaker_bfd_session_up", { peer: routerV4 }), 1);
    }
  });

  it("keeps the last valid BGPAdvertisement when a bad one arrives, and says so", async () => {
    await lab.api("PATCH", `${V1}/bgpadvertisements/lab`, { spec: { communities: ["no-such-alias"] } });
    await waitFor("an invalidConfiguration event", async () => ((await events("invalidConfiguration", "BGPAdvertisement")).length > 0 ? true : undefined));
    const state = await waitFor("the ConfigurationState to say so", async () => {
      const s = await lab.api<{ status?: { result?: string; errorSummary?: string } }>("GET", `${V1}/configurationstates/speaker-node1`);
      return s.status?.result === "Invalid" ? s.status : undefined;
    });
    assert.match(state.errorSummary ?? "", /no-such-alias/);
    await new Promise((r) => setTimeout(r, 1000));
    const detail = JSON.parse(await router.vtysh("bgpd", `show bgp ipv4 unicast ${lab.vip4}/32 json`)) as { paths: { community?: { string?: string } }[] };
    assert.equal(detail.paths.length, 2, "nothing withdrawn");
    assert.ok(detail.paths.every((p) => p.community?.string === "64500:7 no-advertise"), "the old communities stay");
    await lab.api("PATCH", `${V1}/bgpadvertisements/lab`, { spec: { communities: ["64500:8"] } });
    await waitFor("the new community", async () => {
      const d = JSON.parse(await router.vtysh("bgpd", `show bgp ipv4 unicast ${lab.vip4}/32 json`)) as { paths: { community?: { string?: string } }[] };
      return d.paths.length === 2 && d.paths.every((p) => p.community?.string === "64500:8") ? true : undefined;
    });
  });

  it("externalTrafficPolicy Local: only the node with a ready endpoint announces", async () => {
    await lab.api("PATCH", "/api/v1/namespaces/default/services/web", { spec: { externalTrafficPolicy: "Local" } });
    await waitFor("one path, via node1", async () => ((await nextHops(`${lab.vip4}/32`)).join() === node1.ipv4 ? true : undefined));
    await waitFor("node2's ServiceBGPStatus gone", async () => ((await statuses()).map((s) => s.status?.node).join() === "node1" ? true : undefined));
    await lab.api("PATCH", "/api/v1/namespaces/default/services/web", { spec: { externalTrafficPolicy: "Cluster" } });
    await waitFor("two paths again", async () => ((await nextHops(`${lab.vip4}/32`)).length === 2 ? true : undefined));
  });

  it("a speaker stopped with SIGTERM leaves its routes with the router (graceful restart) until it is back", async (t) => {
    await lab.stopSpeaker(node2, "SIGTERM");
    await waitFor("node2's sessions down at the router", async () => ((await router.established()).length === 2 ? true : undefined));
    const paths = await router.paths(`${lab.vip4}/32`);
    t.diagnostic(`paths after node2's SIGTERM: ${JSON.stringify(paths)}`);
    assert.deepEqual(paths.map((p) => p.nextHop).sort(), [node1.ipv4, node2.ipv4].sort(), "node2's path stays, stale");
    lab.startSpeakers([node2]);
    // Until node2 is back and has sent its table, its stale path must never go.
    const lost: string[][] = [];
    await waitFor(
      "node2 back, its path fresh",
      async () => {
        const now = await router.paths(`${lab.vip4}/32`);
        if (!now.some((p) => p.nextHop === node2.ipv4)) lost.push(now.map((p) => p.nextHop));
        const detail = JSON.parse(await router.vtysh("bgpd", `show bgp ipv4 unicast ${lab.vip4}/32 json`)) as { paths?: { stale?: boolean }[] };
        const paths = detail.paths ?? [];
        return (await router.established()).length === 4 && paths.length === 2 && paths.every((p) => !p.stale) ? true : undefined;
      },
      60_000,
    );
    assert.deepEqual(lost, [], "node2's path was never withdrawn while it restarted");
  });

  it("a node lost outright (link down: no FIN reaches the router) is withdrawn by BFD, and comes back", async (t) => {
    // A killed speaker's connection closes, and with graceful restart the router keeps its routes, stale (the
    // previous case's point); a dead machine sends nothing, and BFD is what notices.
    let bfdPeers = "";
    await waitFor("BFD up with node1", async () => {
      bfdPeers = await router.vtysh("bfdd", "show bfd peers json");
      const peers = JSON.parse(bfdPeers) as { peer: string; status: string }[];
      return peers.some((p) => p.peer === node1.ipv4 && p.status === "up") ? true : undefined;
    }).catch((err) => {
      throw new Error(`${err.message}: ${bfdPeers}`);
    });
    const downAt = Date.now();
    await ip(["-n", node1.netns, "link", "set", node1.ifname, "down"]);
    // Within 5 s only BFD can have noticed: the hold time is 9 s.
    await waitFor("node1's next hop gone", async () => ((await nextHops(`${lab.vip4}/32`)).join() === node2.ipv4 ? true : undefined), 5_000);
    t.diagnostic(`link down on node1 → its path gone from FRR's RIB after ${Date.now() - downAt} ms (vtysh polled, BFD 300 ms × 3)`);
    await ip(["-n", node1.netns, "link", "set", node1.ifname, "up"]);
    await waitFor("two paths again", async () => ((await nextHops(`${lab.vip4}/32`)).length === 2 ? true : undefined), 60_000);
  });
});

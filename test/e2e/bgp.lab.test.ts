// The user story in BGP mode, once per router daemon: `bollard lab up --bgp frr|bird|gobgp`'s lab (a router
// namespace running FRR, BIRD or GoBGP between the client and the nodes), MetalLB's pool + BFDProfile + BGPPeer + BGPAdvertisement applied as users write them, the demo
// app, and curl from the client — whose only way to a Service address is the router's BGP routes. The router must
// have an ECMP route over both nodes and spread the client's requests over both nodes' ingresses (each node's
// ingress counts them); killing one node's speaker must take its next hop away (its TCP connection
// closes; BFD backs it up), and a node that is lost outright (its link down: nothing reaches the router) must be
// withdrawn by BFD (FRR and BIRD; GoBGP has no BFD). How fast is printed as a diagnostic, not asserted (bench/
// measures speed). BOLLARD_E2E_BGP_ROUTERS=frr,bird narrows the routers.
import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { execIn, type Lab, labBgpManifest, ROUTER_DAEMONS, type RouterDaemon, startLab } from "@bollard/lab";
import { curl, eventually, waitForServiceIP } from "./helpers.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");

const routers = (process.env.BOLLARD_E2E_BGP_ROUTERS?.split(",") ?? [...ROUTER_DAEMONS]) as RouterDaemon[];
const names: Record<RouterDaemon, string> = { frr: "FRR", bird: "BIRD", gobgp: "GoBGP" };

for (const daemon of routers) describe(`the user story in BGP mode (${names[daemon]})`, { timeout: 600_000 }, () => {
  let lab: Lab;
  let vip = "";
  const router = () => lab.network.router as NonNullable<Lab["network"]["router"]>;
  /** The next hops of the router's kernel route to an address (what it forwards by), sorted. */
  const kernelNextHops = async (address: string) => {
    const routes = JSON.parse((await execIn(router().netns, "ip", ["-j", "route", "show", address])).stdout) as { dst?: string; gateway?: string; nexthops?: { gateway: string }[] }[];
    return routes
      .filter((r) => r.dst === address)
      .flatMap((r) => (r.nexthops ? r.nexthops.map((n) => n.gateway) : r.gateway ? [r.gateway] : []))
      .sort();
  };
  const nodeIPs = () => lab.network.nodes.map((n) => n.ipv4).sort();
  const bgpRouter = () => lab.router as NonNullable<Lab["router"]>;
  /** Why FRR last reset a neighbor's session (FRR says; the others' CLIs are not asked). */
  const resetReason = async (address: string) => {
    const r = bgpRouter();
    if (r.daemon !== "frr") return "(not asked)";
    const neighbor = JSON.parse(await r.vtysh("bgpd", `show bgp neighbors ${address} json`))[address] as { lastResetDueTo?: string } | undefined;
    return neighbor?.lastResetDueTo ?? "?";
  };
  /** The demo Ingress's answered requests, from one node's ingress's own metrics (`bollard_ingress_requests_total`). */
  const demoRequests = async (netns: string) => {
    const text = (await execIn(netns, "curl", ["-sS", "--max-time", "5", "http://127.0.0.1:10254/metrics"])).stdout;
    let sum = 0;
    for (const m of text.matchAll(/^bollard_ingress_requests_total\{([^}]*)\} (\d+)$/gm)) if ((m[1] as string).includes('ingress="default/demo"')) sum += Number(m[2]);
    return sum;
  };

  before(async () => {
    lab = await startLab({ nodes: 2, bgp: daemon, log: (l) => process.stdout.write(`# lab: ${l}\n`) });
  });
  after(async () => {
    if (lab) await lab.down();
  });

  it("1. a LoadBalancer Service gets an address, the router has an ECMP route over both nodes, and the client's requests reach both nodes' ingresses", async (t) => {
    const applied = await lab.kubectl(["apply", "-f", "-"], labBgpManifest(lab.network));
    assert.equal(applied.code, 0, applied.stderr);
    await lab.kubectl(["apply", "-f", join(root, "examples/demo-app.yaml")]);
    vip = await waitForServiceIP(lab, "metallb-system", "bollard-ingress");
    assert.match(vip, /^10\.253\./, "the address comes from the BGP pool, a subnet only the router's BGP routes lead to");
    await eventually("both nodes' BGP sessions", async () => ((await lab.router?.established())?.length === 2 ? true : undefined), 60_000);
    await eventually("an ECMP route via both nodes in the router's kernel", async () => ((await kernelNextHops(vip)).length === 2 ? true : undefined), 60_000);
    assert.deepEqual(await kernelNextHops(vip), nodeIPs());
    // FRR marks the paths it uses together; BIRD and GoBGP do not (the kernel route above shows both used).
    const paths = await eventually("two BGP paths in the router's RIB", async () => {
      const now = await bgpRouter().paths(`${vip}/32`);
      return now.length === 2 && (daemon !== "frr" || now.every((p) => p.multipath)) ? now : undefined;
    });
    assert.deepEqual(paths.map((p) => p.nextHop).sort(), nodeIPs(), "two BGP paths");
    // Before BGP, the client has no route to the address at all.
    const clientRoutes = (await lab.execClient("ip", ["-j", "route", "get", vip])).stdout;
    assert.match(clientRoutes, new RegExp(`"gateway":"${router().clientSideIPv4.replaceAll(".", "\\.")}"`), "the client's way to the address is the router");
    await eventually("demo.local answering through the router", async () => {
      const r = await curl(lab, ["--resolve", `demo.local:80:${vip}`, "http://demo.local/"]);
      return r.code === 0 && r.body.startsWith("demo-") ? true : undefined;
    }, 60_000);
    // ECMP carries the client's requests to both nodes' ingresses: each node's own request counter must move. The
    // router hashes on ports (fib_multipath_hash_policy=1) and each curl has a new source port; 24 requests all on
    // one node would happen by chance once in 2^23 runs.
    const before = await Promise.all(lab.network.nodes.map((n) => demoRequests(n.netns)));
    const bodies = new Set<string>();
    const REQUESTS = 24;
    for (let i = 0; i < REQUESTS; i++) {
      const r = await curl(lab, ["--resolve", `demo.local:80:${vip}`, "http://demo.local/"]);
      assert.equal(r.code, 0, r.body);
      bodies.add(r.body);
    }
    const afterCounts = await Promise.all(lab.network.nodes.map((n) => demoRequests(n.netns)));
    const perNode = afterCounts.map((count, i) => count - (before[i] ?? 0));
    t.diagnostic(`requests per node's ingress: ${lab.network.nodes.map((n, i) => `${n.name} ${perNode[i]}`).join(", ")}`);
    assert.equal(perNode.reduce((a, b) => a + b, 0), REQUESTS, "every request reached one of the nodes' ingresses");
    for (const [i, n] of lab.network.nodes.entries()) assert.ok((perNode[i] ?? 0) > 0, `${n.name}'s ingress got none of the client's requests: the router did not spread them`);
    assert.deepEqual([...bodies].sort(), ["demo-node1", "demo-node2"], "both backends answer");
  });

  it("2. killing one node's speaker removes its next hop from the router, and the client is served by the other", async (t) => {
    const victim = lab.network.nodes[0] as (typeof lab.network.nodes)[number];
    const speaker = lab.processes().find((p) => p.name === `${victim.name}-speaker`);
    assert.ok(speaker, "the node's speaker runs");
    // BFD must be up on the router's side, or a graceful-restart helper keeps the killed node's routes.
    if (daemon !== "gobgp") {
      await eventually("BFD up with both nodes at the router", async () => ((await bgpRouter().bfdPeers()).filter((p) => p.up).length === lab.network.nodes.length ? true : undefined), 30_000);
    }
    const killedAt = performance.now();
    await speaker.stop("SIGKILL", 0);
    let gone = 0;
    await eventually(
      `${victim.name}'s next hop gone from the router's kernel route`,
      async () => {
        const hops = await kernelNextHops(vip);
        if (hops.includes(victim.ipv4)) return undefined;
        gone = performance.now() - killedAt;
        return hops;
      },
      10_000,
      10,
    );
    t.diagnostic(`SIGKILL of ${victim.name}'s speaker → its next hop gone from the router's kernel route after ${Math.round(gone)} ms (polled every ~10 ms plus ip's own run time)`);
    t.diagnostic(`the router's reason for resetting the session: ${await resetReason(victim.ipv4)}`);
    assert.deepEqual(await kernelNextHops(vip), nodeIPs().filter((a) => a !== victim.ipv4));
    for (let i = 0; i < 6; i++) {
      const r = await curl(lab, ["--resolve", `demo.local:80:${vip}`, "http://demo.local/"]);
      assert.equal(r.code, 0, `request ${i} after the kill: ${r.body}`);
    }
  });

  it("3. a node lost outright (link down) is withdrawn by BFD", { skip: daemon === "gobgp" ? "GoBGP has no BFD" : false }, async (t) => {
    const lost = lab.network.nodes[1] as (typeof lab.network.nodes)[number];
    await eventually("BFD up with the remaining node", async () => ((await bgpRouter().bfdPeers()).some((p) => p.peer === lost.ipv4 && p.up) ? true : undefined), 30_000);
    const downAt = performance.now();
    await execIn(lost.netns, "ip", ["link", "set", lost.ifname, "down"]);
    let gone = 0;
    await eventually(`${lost.name}'s next hop gone`, async () => {
      if ((await kernelNextHops(vip)).includes(lost.ipv4)) return undefined;
      gone = performance.now() - downAt;
      return true;
    }, 10_000, 10);
    // Nothing else could have noticed within 10 s: the hold time is MetalLB's default, 90 s.
    t.diagnostic(`link down on ${lost.name} → its next hop gone from the router's kernel route after ${Math.round(gone)} ms (BFD 200 ms × 3; the router's last reset: ${await resetReason(lost.ipv4)})`);
  });
});

// BGP mode: how long the lab router (FRR) keeps forwarding to a node that is lost, with BFD (the lab's BGPPeer:
// BFDProfile 200 ms × 3) and without it (the same peer without bfdProfile, holdTime 9s: the hold timer decides).
// A node is "lost" by taking its link down inside its namespace — no FIN, no NOTIFICATION reaches the router, as
// when a machine dies — and the time runs until the router's kernel route to the Service address has dropped
// that node's next hop. Then the link comes back, the sessions return and the next trial starts. Inside the
// lab's own namespaces; reported, not judged against anything but the "< 1 s with BFD".
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { execIn, ip, type Lab, labBgpManifest, startLab } from "@bollard/lab";
import { ingressAddress } from "./lib/lab.ts";
import type { Part, PartOutput, Verdict } from "./lib/part.ts";
import { waitUntil } from "./lib/proc.ts";
import { fmt, median, percentile } from "./lib/stats.ts";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "..");
const TRIALS = Number(process.env.BENCH_BGP_TRIALS ?? 10);

async function kernelNextHops(lab: Lab, address: string): Promise<string[]> {
  const router = lab.network.router;
  if (!router) throw new Error("no router");
  const routes = JSON.parse((await execIn(router.netns, "ip", ["-j", "route", "show", address])).stdout) as { dst?: string; gateway?: string; nexthops?: { gateway: string }[] }[];
  return routes.filter((r) => r.dst === address).flatMap((r) => (r.nexthops ? r.nexthops.map((n) => n.gateway) : r.gateway ? [r.gateway] : []));
}

async function bfdUp(lab: Lab): Promise<number> {
  const peers = JSON.parse((await lab.router?.vtysh("bfdd", "show bfd peers json")) ?? "[]") as { status: string }[];
  return peers.filter((p) => p.status === "up").length;
}

/** One trial: node `index` loses its link; ms until the router's kernel route no longer goes through it. */
async function loseNode(lab: Lab, vip: string, index: number): Promise<number> {
  const node = lab.network.nodes[index];
  if (!node) throw new Error(`no node ${index}`);
  const start = performance.now();
  await ip(["-n", node.netns, "link", "set", node.ifname, "down"]);
  let took = Number.NaN;
  await waitUntil(`${node.name}'s next hop gone`, async () => {
    if ((await kernelNextHops(lab, vip)).includes(node.ipv4)) return false;
    took = performance.now() - start;
    return true;
  }, 120_000, 5);
  await ip(["-n", node.netns, "link", "set", node.ifname, "up"]);
  return took;
}

export const part: Part = {
  name: "bgp",
  title: "BGP mode: withdrawal of a lost node's routes at the router, with and without BFD",
  async run(ctx): Promise<PartOutput> {
    ctx.log("starting a lab with 2 nodes and an FRR router");
    const lab = await startLab({ nodes: 2, bgp: "frr", log: (l) => ctx.log(`lab: ${l}`) });
    ctx.scope.defer(() => lab.down());
    const applied = await lab.kubectl(["apply", "-f", "-"], labBgpManifest(lab.network));
    if (applied.code !== 0) throw new Error(`BGP config: ${applied.stderr}`);
    await lab.kubectl(["apply", "-f", join(repoRoot, "examples/demo-app.yaml")]);
    const vip = await ingressAddress(lab, 60_000, 200);
    const both = async () => (await kernelNextHops(lab, vip)).length === lab.network.nodes.length;

    const runTrials = async (label: string, ready: () => Promise<boolean>) => {
      const samples: number[] = [];
      for (let i = 0; i < TRIALS; i++) {
        await waitUntil(`${label}: both next hops and sessions back`, ready, 180_000, 100);
        await sleep(1000);
        const ms = await loseNode(lab, vip, i % lab.network.nodes.length);
        ctx.log(`${label} trial ${i + 1}: ${fmt(ms, "ms")}`);
        samples.push(ms);
      }
      return samples;
    };
    const withBfd = await runTrials("with BFD", async () => (await both()) && (await bfdUp(lab)) === lab.network.nodes.length);
    // Without BFD: the same peer, no bfdProfile, a 9 s hold time (MetalLB's default is 90 s).
    const patched = await lab.kubectl(["patch", "bgppeer", "lab-router", "-n", "metallb-system", "--type", "json", "-p", JSON.stringify([{ op: "remove", path: "/spec/bfdProfile" }, { op: "add", path: "/spec/holdTime", value: "9s" }])]);
    if (patched.code !== 0) throw new Error(`patch: ${patched.stderr}`);
    const established = async () => ((await lab.router?.established()) ?? []).filter((a) => !a.includes(":")).length === lab.network.nodes.length;
    await sleep(3000);
    const withoutBfd = await runTrials("without BFD", async () => (await both()) && (await established()));

    const row = (label: string, s: number[]) => [label, String(s.length), fmt(median(s), "ms"), fmt(percentile(s, 90), "ms"), fmt(Math.max(...s), "ms")];
    const verdicts: Verdict[] = [
      { id: "bgp-bfd", what: "lost node's next hop gone at the router, BFD 200 ms × 3", target: "< 1 s", measured: `p50 ${fmt(median(withBfd), "ms")}, max ${fmt(Math.max(...withBfd), "ms")}`, met: Math.max(...withBfd) < 1000 },
      { id: "bgp-hold", what: "the same without BFD, hold time 9 s", target: "(reference)", measured: `p50 ${fmt(median(withoutBfd), "ms")}`, met: null },
    ];
    return {
      commands: ["sudo npm run bench -- bgp"],
      tables: [{ caption: `link down in a node's namespace → the router's kernel route without that next hop (${TRIALS} trials each, polled every ~5 ms)`, columns: ["", "trials", "p50", "p90", "max"], rows: [row("BFD 200 ms × 3", withBfd), row("no BFD, hold time 9 s", withoutBfd)] }],
      verdicts,
      notes: [
        "FRR's own timers decide both figures: with BFD its bfdd declares the session down after 3 missed 200 ms packets and bgpd withdraws; without BFD bgpd waits for the hold timer.",
        "The 1,000-Service announcement benchmark (time until the router has all, speaker CPU and RSS) is not written yet.",
      ],
      data: { withBfd, withoutBfd },
    };
  },
};

// #9b The lab's path: the same ingress measured three ways in one lab, interleaved round by round — from the client
// through the load-balancer address (ARP answered by the speaker, the kube-proxy stand-in's nft DNAT), from the
// client to the announcing node's own address and ingress port (no DNAT), and on loopback inside that node — so a
// loss on the path shows as a ratio, whatever else the machine is doing. All traffic stays in the lab's namespaces.
import { cp } from "node:fs/promises";
import { join, resolve } from "node:path";
import { execIn, type Lab, labPoolManifest, startLab } from "@bollard/lab";
import { ingressAddress } from "./lib/lab.ts";
import type { Part, PartOutput, Verdict } from "./lib/part.ts";
import { waitUntil } from "./lib/proc.ts";
import { fmt, median, ratio } from "./lib/stats.ts";
import { parseWrk, type WrkOptions, type WrkResult, wrkArgs, wrkCommand } from "./lib/wrk.ts";

const repoRoot = resolve(import.meta.dirname, "..");
const ROUNDS = 3;
const LOAD_S = 5;
const INGRESS_PORT = 8080;

type Path = { name: string; netns: (lab: Lab, node: string) => string; url: (vip: string, nodeIP: string) => string };

const PATHS: Path[] = [
  { name: "client → address (ARP + DNAT)", netns: (lab) => lab.network.client.netns, url: (vip) => `http://${vip}/` },
  { name: "client → node address:8080 (no DNAT)", netns: (lab) => lab.network.client.netns, url: (_, nodeIP) => `http://${nodeIP}:${INGRESS_PORT}/` },
  {
    name: "node loopback 127.0.0.1:8080",
    netns: (lab, node) => lab.network.nodes.find((n) => n.name === node)?.netns ?? "",
    url: () => `http://127.0.0.1:${INGRESS_PORT}/`,
  },
];

async function wrkIn(netns: string, opts: WrkOptions): Promise<WrkResult> {
  const [command, ...args] = wrkArgs(opts) as [string, ...string[]];
  const res = await execIn(netns, command, args, { timeoutMs: (opts.durationS + 30) * 1000 });
  return parseWrk(res.stdout);
}

export const part: Part = {
  name: "lab-path",
  title: "#9b The lab's path through the load-balancer address, beside the node's address and loopback",
  async run(ctx): Promise<PartOutput> {
    const lab = await startLab({ nodes: 2, log: (l) => ctx.log(`lab: ${l}`) });
    ctx.scope.defer(() => lab.down());
    ctx.scope.defer(() => cp(join(lab.dir, "logs"), join(ctx.dir, "lab-logs"), { recursive: true }).catch(() => {}));
    await lab.kubectl(["apply", "-f", "-"], labPoolManifest(lab.network.prefixV4));
    await lab.kubectl(["apply", "-f", join(repoRoot, "examples/demo-app.yaml")]);
    const vip = await ingressAddress(lab, 120_000, 500);
    await waitUntil("demo.local through the address", async () => {
      const r = await lab.execClient("curl", ["-sS", "--max-time", "3", "--resolve", `demo.local:80:${vip}`, "http://demo.local/"], { allowFailure: true });
      return r.code === 0 && r.stdout.startsWith("demo-");
    }, 120_000, 500);
    // Who answers ARP for the address: the client's neighbour entry after the requests above.
    const neigh = (await lab.execClient("ip", ["neigh", "show", vip], { allowFailure: true })).stdout;
    const mac = /lladdr ([0-9a-f:]{17})/i.exec(neigh)?.[1]?.toLowerCase();
    const announcer = lab.network.nodes.find((n) => n.mac.toLowerCase() === mac);
    if (announcer === undefined) throw new Error(`no lab node has the MAC the client resolved ${vip} to (${neigh.trim()})`);
    ctx.log(`address ${vip} announced by ${announcer.name} (${announcer.ipv4})`);

    const results: WrkResult[][] = PATHS.map(() => []);
    const commands: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, path] of PATHS.entries()) {
        const opts: WrkOptions = { url: path.url(vip, announcer.ipv4), connections: 64, threads: 1, durationS: LOAD_S, host: "demo.local", timeoutS: 5 };
        const netns = path.netns(lab, announcer.name);
        if (round === 0) commands.push(`ip netns exec <${netns.replace(/^bollard-[0-9a-f]+-/, "")}> ${wrkCommand(opts)}`);
        ctx.log(`round ${round + 1}: ${path.name}`);
        (results[i] as WrkResult[]).push(await wrkIn(netns, opts));
      }
    }
    const medians = results.map((runs) => median(runs.map((r) => r.requestsPerSec)));
    const [throughAddress, direct, loopback] = medians as [number, number, number];
    const verdicts: Verdict[] = [
      {
        id: "9b",
        what: "the lab's path (client → address, ARP + DNAT) beside the ingress on loopback in the announcing node",
        target: "≥ 0.5× loopback",
        measured: `${fmt(throughAddress)} vs ${fmt(loopback)} req/s (${ratio(throughAddress, loopback)}); node address without DNAT ${fmt(direct)} req/s (${ratio(direct, loopback)})`,
        met: loopback > 0 ? throughAddress / loopback >= 0.5 : null,
      },
    ];
    return {
      commands: [
        "# startLab({ nodes: 2 }) from @bollard/lab; the lab pool + L2Advertisement; examples/demo-app.yaml; then per round, interleaved:",
        ...commands,
      ],
      tables: [
        {
          caption: `wrk -t1 -c64, ${LOAD_S} s per run, ${ROUNDS} interleaved rounds; the same ingress (one worker) and demo backends each time`,
          columns: ["path", ...Array.from({ length: ROUNDS }, (_, r) => `round ${r + 1} req/s`), "median req/s", "× loopback", "errors (all rounds)", "p99 ms (median)"],
          rows: PATHS.map((path, i) => {
            const runs = results[i] as WrkResult[];
            return [
              path.name,
              ...runs.map((r) => fmt(r.requestsPerSec)),
              fmt(medians[i] as number),
              ratio(medians[i] as number, loopback),
              String(runs.reduce((sum, r) => sum + r.totalErrors, 0)),
              fmt(median(runs.map((r) => r.p99))),
            ];
          }),
        },
      ],
      verdicts,
      notes: [
        "Every process (control plane, controller, speakers, ingresses, backends, wrk) shares this machine's CPUs unpinned, so absolute figures follow the machine's load; the ratios compare runs interleaved in one lab.",
        "The ingress answers from the demo backends of both nodes in all three paths, so the paths differ only in how a request reaches the ingress.",
      ],
      data: { vip, announcer: announcer.name, results },
    };
  },
};

// #7 ARP answer latency, #8 L2 failover and #9 resource use, in the lab (@bollard/lab's startLab: a real control
// plane, node and client network namespaces, Bollard's controller, speakers and ingresses as real processes).
// #17: the same measurements with MetalLB's controller and speakers in the lab instead of Bollard's
// (startLab({ implementation: "metallb" })), one lab after the other in the same run, plus allocation latency.
// All traffic stays inside the lab's own namespaces.
import { cp, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { kubeRequest } from "@bollard/core";
import { type Lab, type LabImplementation, startLab } from "@bollard/lab";
import { ingressAddress } from "./lib/lab.ts";
import type { Part, PartContext, PartOutput, Table, Verdict } from "./lib/part.ts";
import { createScope } from "./lib/scope.ts";
import { measureUsage, type Usage, waitUntil } from "./lib/proc.ts";
import { fmt, median, percentile, ratio } from "./lib/stats.ts";
import { parseWrk } from "./lib/wrk.ts";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "..");
const TRIALS = 10;
/** one node more than trials: each trial stops the node announcing the address */
const NODES = TRIALS + 1;
const ARP_PROBES = 200;
const LOOP_BEFORE_MS = 1000;
const LOOP_AFTER_MS = 10_000;
const LOOP_CONCURRENCY = 4;
const LOOP_TIMEOUT_MS = 200;
const IDLE_MS = 10_000;
const LOAD_S = 10;
const ALLOCATIONS = 20;
/** `BENCH_LAB_IMPLEMENTATIONS=bollard` skips MetalLB's lab. */
const IMPLEMENTATIONS = (process.env.BENCH_LAB_IMPLEMENTATIONS ?? "bollard,metallb").split(",").filter((s) => s !== "") as LabImplementation[];

/** arping's per-reply times, in milliseconds */
export function parseArping(out: string): number[] {
  const unit: Record<string, number> = { usec: 0.001, msec: 1, sec: 1000 };
  return [...out.matchAll(/time=([\d.]+) (usec|msec|sec)/g)].map((m) => Number(m[1]) * (unit[m[2] as string] ?? Number.NaN));
}

async function announcerMac(lab: Lab, ip: string): Promise<string | undefined> {
  const res = await lab.execClient("arping", ["-c", "1", "-w", "2", "-i", lab.network.client.ifname, ip], { allowFailure: true });
  return /\[([0-9a-f:]{17})\]/i.exec(res.stdout)?.[1]?.toLowerCase() ?? /from ([0-9a-f:]{17})/i.exec(res.stdout)?.[1]?.toLowerCase();
}

const nodeByMac = (lab: Lab, mac: string | undefined) => lab.network.nodes.find((n) => n.mac.toLowerCase() === mac);

/**
 * A LoadBalancer Service created, one at a time, until the controller's address is in its status (polled every
 * 5 ms through a keep-alive client), then deleted so the next one finds the pool as before.
 */
async function allocationLatencies(lab: Lab): Promise<number[]> {
  const path = "/api/v1/namespaces/default/services";
  const times: number[] = [];
  for (let i = 0; i < ALLOCATIONS; i++) {
    const name = `bench-alloc-${i}`;
    const created = Date.now();
    await kubeRequest(lab.kubeConfig, {
      method: "POST",
      path,
      body: { apiVersion: "v1", kind: "Service", metadata: { name }, spec: { type: "LoadBalancer", ports: [{ port: 80, targetPort: 8000 }] } },
    });
    const deadline = created + 30_000;
    for (;;) {
      const svc = await kubeRequest<{ status?: { loadBalancer?: { ingress?: unknown[] } } }>(lab.kubeConfig, { path: `${path}/${name}` });
      if ((svc.status?.loadBalancer?.ingress?.length ?? 0) > 0) {
        times.push(Date.now() - created);
        break;
      }
      if (Date.now() > deadline) {
        times.push(Number.NaN);
        break;
      }
      await sleep(5);
    }
    await kubeRequest(lab.kubeConfig, { method: "DELETE", path: `${path}/${name}` });
    await sleep(200);
  }
  return times;
}

interface LabFigures {
  arpVip: number[];
  arpKernel: number[];
  failovers: number[];
  trials: number;
  allocations: number[];
  controllerIdleMiB: number;
  controllerLoadedMiB: number;
  controllerIdleCpu: number;
  speakerIdleMiB: number;
  speakerLoadedMiB: number;
  speakerIdleCpu: number;
}

export const part: Part = {
  name: "lab",
  title: "#7–#9 ARP answers, L2 failover and resource use, in the lab; #17 MetalLB side by side",
  async run(ctx): Promise<PartOutput> {
    const outputs: Array<{ implementation: LabImplementation; version: string; output: PartOutput; figures: LabFigures }> = [];
    for (const implementation of IMPLEMENTATIONS) {
      // One lab at a time, each down before the next starts.
      const scope = createScope();
      ctx.scope.defer(() => scope.close());
      try {
        outputs.push({ implementation, ...(await measureLab({ ...ctx, scope }, implementation)) });
      } finally {
        await scope.close();
      }
    }
    return combine(outputs);
  },
};

async function measureLab(ctx: PartContext, implementation: LabImplementation): Promise<{ version: string; output: PartOutput; figures: LabFigures }> {
  {
    ctx.log(`starting a lab with ${NODES} nodes (${implementation})`);
    const lab = await startLab({ nodes: NODES, implementation, log: (l) => ctx.log(`lab: ${l}`) });
    ctx.scope.defer(() => lab.down());
    const version = lab.metallbVersion ?? "";
    const who = implementation === "metallb" ? `MetalLB ${version}` : "Bollard";
    // The lab's own logs go with it; keep a copy with the part's scratch files (kept when the part fails).
    ctx.scope.defer(() => cp(join(lab.dir, "logs"), join(ctx.dir, "lab-logs"), { recursive: true }).catch(() => {}));
    const net = lab.network.prefixV4;
    const applied = await lab.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bench-pool, namespace: metallb-system}
spec:
  addresses: [${net}.200-${net}.220]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: bench, namespace: metallb-system}
spec:
  ipAddressPools: [bench-pool]
`,
    );
    if (applied.code !== 0) throw new Error(`pool: ${applied.stderr}`);
    await lab.kubectl(["apply", "-f", join(repoRoot, "examples/demo-app.yaml")]);
    const vip = await ingressAddress(lab, 60_000, 200);
    const curl = () => lab.execClient("curl", ["-sS", "--max-time", "2", "--resolve", `demo.local:80:${vip}`, "http://demo.local/"], { allowFailure: true, timeoutMs: 5000 });
    await waitUntil(`demo.local through ${vip}`, async () => (await curl()).stdout.startsWith("demo-"), 120_000, 200);
    const announcer = nodeByMac(lab, await announcerMac(lab, vip));
    if (announcer === undefined) throw new Error(`nobody answers ARP for ${vip}`);
    ctx.log(`${vip} is announced by ${announcer.name}`);

    // #9: every Bollard process, idle and then under load #1 (wrk, 64 connections) through the address.
    const procs = lab.processes().filter((p) => p.name === "controller" || p.name.endsWith("-speaker") || p.name.endsWith("-ingress"));
    const usageOf = async (during: number | (() => Promise<unknown>)) => {
      const measured = await Promise.all(procs.map(async (p) => [p.name, (await measureUsage(p.child.pid as number, during)).usage] as const));
      return new Map<string, Usage>(measured);
    };
    ctx.log(`#9: ${IDLE_MS / 1000} s idle`);
    const idle = await usageOf(IDLE_MS);
    ctx.log(`#9: wrk -c64 -d${LOAD_S}s from the client through ${vip}, after a 3 s warm-up`);
    const wrkArgs = ["-t1", "-c64", `-d${LOAD_S}s`, "--timeout", "5s", "--latency", "-H", "Host: demo.local", `http://${vip}/`];
    // The first seconds after start-up open upstream connections to every backend and run cold code.
    await lab.execClient("wrk", ["-t1", "-c64", "-d3s", "-H", "Host: demo.local", `http://${vip}/`], { timeoutMs: 60_000, allowFailure: true });
    let wrkOut = "";
    const loaded = await usageOf(async () => {
      wrkOut = (await lab.execClient("wrk", wrkArgs, { timeoutMs: (LOAD_S + 30) * 1000 })).stdout;
    });
    const wrk = parseWrk(wrkOut);
    // What the loaded ingress itself reported meanwhile (warnings and errors), to explain errors or slowness.
    const ingressLog = await readFile(lab.processes().find((p) => p.name === `${announcer.name}-ingress`)?.logPath ?? "/dev/null", "utf8").catch(() => "");
    const ingressProblems = ingressLog.split("\n").filter((l) => /"level":(4|5|6)\d/.test(l));

    // #7: the speaker answering ARP for the address, and the kernel answering for the node's own address.
    ctx.log(`#7: ${ARP_PROBES} ARP probes for ${vip} and for ${announcer.ipv4}`);
    const arping = async (ip: string) =>
      parseArping((await lab.execClient("arping", ["-c", String(ARP_PROBES), "-W", "0.01", "-i", lab.network.client.ifname, ip], { allowFailure: true, timeoutMs: 60_000 })).stdout);
    const arpVip = await arping(vip);
    const arpKernel = await arping(announcer.ipv4);

    ctx.log(`#17: allocation latency, ${ALLOCATIONS} LoadBalancer Services one at a time`);
    const allocations = await allocationLatencies(lab);

    // #8: stop the announcing node while the client loops; the time to the first success after it is gone.
    const loopScript = join(here, "lab-client.ts");
    const trials: {
      stopped: string;
      next: string;
      failoverMs: number;
      failedAfterStop: number;
      /** successful requests after the first one, and the failures after it: is the new path stable? */
      okAfterFirst: number;
      failedAfterFirst: number;
      errors: Record<string, number>;
      stopMs: number;
    }[] = [];
    let stoppedEarly = "";
    for (let t = 0; t < TRIALS; t++) {
      let current: ReturnType<typeof nodeByMac>;
      await waitUntil(`a node answering ARP for ${vip}`, async () => {
        current = nodeByMac(lab, await announcerMac(lab, vip));
        return current !== undefined;
      }, 20_000, 500).catch(() => {});
      if (current === undefined) {
        stoppedEarly = `after trial ${t}, no node answered ARP for ${vip} within 20 s (${lab.network.nodes.length - t} nodes left)`;
        ctx.log(stoppedEarly);
        break;
      }
      const loop = lab.execClient(
        process.execPath,
        [loopScript, `http://${vip}/`, "demo.local", String(LOOP_BEFORE_MS + LOOP_AFTER_MS), String(LOOP_CONCURRENCY), String(LOOP_TIMEOUT_MS)],
        { timeoutMs: LOOP_BEFORE_MS + LOOP_AFTER_MS + 30_000 },
      );
      await sleep(LOOP_BEFORE_MS);
      const stoppedAt = Date.now();
      await lab.stopNode((current as NonNullable<typeof current>).name);
      const downAt = Date.now();
      const records = JSON.parse((await loop).stdout) as [number, number, number, string][];
      const firstSuccess = records.filter(([start, , status]) => status === 200 && start >= downAt).sort((a, b) => a[1] - b[1])[0];
      const failedAfterStop = records.filter(([start, , status]) => status !== 200 && start >= stoppedAt && (firstSuccess === undefined || start < firstSuccess[0])).length;
      const afterFirst = firstSuccess === undefined ? [] : records.filter(([start]) => start > firstSuccess[0]);
      const errors: Record<string, number> = {};
      for (const [start, , status, body] of records) {
        if (status === 200 || start < stoppedAt) continue;
        const key = status === 0 ? body.replace(/\d+\.\d+\.\d+\.\d+(:\d+)?/g, "<addr>") : `HTTP ${status}`;
        errors[key] = (errors[key] ?? 0) + 1;
      }
      const next = nodeByMac(lab, await announcerMac(lab, vip));
      const failoverMs = firstSuccess === undefined ? Number.NaN : firstSuccess[1] - stoppedAt;
      const trial = {
        stopped: (current as NonNullable<typeof current>).name,
        next: next?.name ?? "nobody",
        failoverMs,
        failedAfterStop,
        okAfterFirst: afterFirst.filter((r) => r[2] === 200).length,
        failedAfterFirst: afterFirst.filter((r) => r[2] !== 200).length,
        errors,
        stopMs: downAt - stoppedAt,
      };
      trials.push(trial);
      ctx.log(
        `#8 trial ${t + 1}/${TRIALS}: stopped ${trial.stopped}, ${trial.next} answers ARP now; first success ${fmt(failoverMs, "ms")} after the stop (${failedAfterStop} failed before it; after it ${trial.okAfterFirst} ok, ${trial.failedAfterFirst} failed: ${JSON.stringify(errors)})`,
      );
      await sleep(1000);
    }

    const failovers = trials.map((t) => t.failoverMs).filter((ms) => Number.isFinite(ms));
    const failoverP50 = failovers.length === TRIALS ? median(failovers) : Number.NaN;
    const arpMedian = median(arpVip);
    const usagesOf = (usage: Map<string, Usage>, which: "announcer" | "others", what: "-ingress" | "-speaker") => {
      const name = `${announcer.name}${what}`;
      const values = [...usage.entries()].filter(([n]) => n.endsWith(what) && (which === "announcer" ? n === name : n !== name)).map(([, u]) => u);
      return values;
    };
    const usageRow = (label: string, idleUs: Usage[], loadUs: Usage[]) => [
      label,
      `${fmt(median(idleUs.map((u) => u.cpuPercent)))} %`,
      fmt(median(idleUs.map((u) => u.rssMiB)), "MiB"),
      `${fmt(median(loadUs.map((u) => u.cpuPercent)))} %`,
      fmt(median(loadUs.map((u) => u.peakRssMiB)), "MiB"),
    ];
    const one = (usage: Map<string, Usage>, name: string) => (usage.get(name) === undefined ? [] : [usage.get(name) as Usage]);
    const tables: Table[] = [
      {
        caption: `#7: ${ARP_PROBES} ARP requests from the client (\`arping\`, 10 ms apart) for the load-balancer address, answered by the speaker on ${announcer.name}, and for ${announcer.name}'s own address, answered by its kernel:`,
        columns: ["who answers", "replies", "median", "p90", "p99", "vs kernel (median)"],
        rows: [
          [`${who} speaker (${vip})`, `${arpVip.length}/${ARP_PROBES}`, fmt(arpMedian, "ms"), fmt(percentile(arpVip, 90), "ms"), fmt(percentile(arpVip, 99), "ms"), ratio(arpMedian, median(arpKernel))],
          [`Linux kernel (${announcer.ipv4})`, `${arpKernel.length}/${ARP_PROBES}`, fmt(median(arpKernel), "ms"), fmt(percentile(arpKernel, 90), "ms"), fmt(percentile(arpKernel, 99), "ms"), "1.00×"],
        ],
      },
      {
        caption: `#8: ${TRIALS} trials in one lab of ${NODES} nodes; each stops the node announcing ${vip} (its processes killed, its link down, its pods unready) while the client requests http://demo.local/ through the address (${LOOP_CONCURRENCY} loops, a new connection per request, ${LOOP_TIMEOUT_MS} ms timeout); time from the stop to the end of the first successful request started after the node was gone:`,
        columns: ["trial", "stopped", "answers ARP after", "first success after", "failed before it", "after it: ok / failed", "failures after the stop"],
        rows: trials.map((t, i) => [
          String(i + 1),
          t.stopped,
          t.next,
          fmt(t.failoverMs, "ms"),
          fmt(t.failedAfterStop),
          `${fmt(t.okAfterFirst)} / ${fmt(t.failedAfterFirst)}`,
          Object.entries(t.errors).map(([k, v]) => `${k} ×${v}`).join("; ") || "–",
        ]),
      },
      {
        caption: `#9: CPU (% of one core) and RSS of the lab's processes (${who} controller and speakers, Bollard's ingresses), ${IDLE_MS / 1000} s idle, then during ${LOAD_S} s of load #1's shape through the address after a 3 s warm-up (\`wrk -t1 -c64\` from the client: ${fmt(wrk.requestsPerSec)} req/s, p99 ${fmt(wrk.p99, "ms")}, ${wrk.totalErrors} errors; every process shares this machine's CPUs, unpinned). Medians over the nodes where there are several:`,
        columns: ["process", "idle CPU", "idle RSS", "loaded CPU", "loaded RSS (peak)"],
        rows: [
          usageRow("controller", one(idle, "controller"), one(loaded, "controller")),
          usageRow(`speaker on ${announcer.name} (announcing)`, usagesOf(idle, "announcer", "-speaker"), usagesOf(loaded, "announcer", "-speaker")),
          usageRow(`speakers on the other ${NODES - 1} nodes`, usagesOf(idle, "others", "-speaker"), usagesOf(loaded, "others", "-speaker")),
          usageRow(`ingress on ${announcer.name} (receives the traffic)`, usagesOf(idle, "announcer", "-ingress"), usagesOf(loaded, "announcer", "-ingress")),
          usageRow(`ingresses on the other ${NODES - 1} nodes`, usagesOf(idle, "others", "-ingress"), usagesOf(loaded, "others", "-ingress")),
        ],
      },
    ];
    const verdicts: Verdict[] = [
      {
        id: "7",
        what: "ARP answer latency (arping from the client, 200 probes)",
        target: "median < 1 ms",
        measured: `median ${fmt(arpMedian, "ms")}, p99 ${fmt(percentile(arpVip, 99), "ms")} (kernel for its own address: ${fmt(median(arpKernel), "ms")})`,
        met: arpVip.length > 0 && arpMedian < 1,
      },
      {
        id: "8",
        what: `L2 failover, ${TRIALS} trials`,
        target: "p50 < 1 s",
        measured:
          (failovers.length === TRIALS
            ? `p50 ${fmt(failoverP50, "ms")}, max ${fmt(Math.max(...failovers), "ms")}`
            : `${TRIALS - failovers.length} of ${TRIALS} trials saw no success within ${LOOP_AFTER_MS / 1000} s; the others: p50 ${fmt(median(failovers), "ms")}`) + (stoppedEarly === "" ? "" : `; ${stoppedEarly}`),
        met: Number.isFinite(failoverP50) && failoverP50 < 1000 && stoppedEarly === "",
      },
      {
        id: "9",
        what: "resource use in the lab (controller, speaker, ingress), idle and under load",
        target: "reported",
        measured: `idle: controller ${fmt(idle.get("controller")?.rssMiB ?? Number.NaN, "MiB")}, speaker ${fmt(median(usagesOf(idle, "announcer", "-speaker").map((u) => u.rssMiB)), "MiB")}, ingress ${fmt(median(usagesOf(idle, "announcer", "-ingress").map((u) => u.rssMiB)), "MiB")}; loaded ingress ${fmt(median(usagesOf(loaded, "announcer", "-ingress").map((u) => u.cpuPercent)))} % CPU`,
        met: null,
      },
    ];
    const notes = [
      `During the load, the ingress on ${announcer.name} logged ${ingressProblems.length} warnings or errors${ingressProblems.length === 0 ? "" : `, e.g. ${ingressProblems.slice(0, 2).map((l) => `\`${l.slice(0, 300)}\``).join("; ")}`}.`,
      ...(stoppedEarly === "" ? [] : [`**Trials stopped early**: ${stoppedEarly}.`]),
      `The lab: ${NODES} node namespaces and a client namespace on one bridge; per node a speaker (as nobody with CAP_NET_RAW only), an ingress, a kube-proxy stand-in (an nft DNAT of the address to the node's ingress) and a demo backend; one controller; a private etcd + kube-apiserver. The ARP reference is the kernel of the same node answering for its own address, on the same wire, in the same run.`,
      `Failover: the lab's stopNode kills the node's processes and takes its link down, so no request after that can be served by it; a request that had been sent to the old MAC times out (${LOOP_TIMEOUT_MS} ms) and the next one goes where the client's neighbour entry now points. The resolution of the figure is about ${LOOP_TIMEOUT_MS / LOOP_CONCURRENCY} ms (${LOOP_CONCURRENCY} staggered loops).`,
    ];
    const output: PartOutput = {
      commands: [
        `# startLab({ nodes: ${NODES} }) from @bollard/lab; IPAddressPool ${net}.200-${net}.220 + L2Advertisement; examples/demo-app.yaml`,
        `ip netns exec <client> arping -c ${ARP_PROBES} -W 0.01 -i ${lab.network.client.ifname} ${vip}`,
        `ip netns exec <client> arping -c ${ARP_PROBES} -W 0.01 -i ${lab.network.client.ifname} ${announcer.ipv4}`,
        `ip netns exec <client> wrk ${wrkArgs.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(" ")}`,
        `ip netns exec <client> node bench/lab-client.ts http://${vip}/ demo.local ${LOOP_BEFORE_MS + LOOP_AFTER_MS} ${LOOP_CONCURRENCY} ${LOOP_TIMEOUT_MS}   # per failover trial`,
        "npm run bench -- lab",
      ],
      tables,
      verdicts,
      notes,
      data: { implementation, version, ingressProblems: ingressProblems.slice(0, 50), vip, announcer: announcer.name, arpVip, arpKernel, allocations, trials, idle: Object.fromEntries(idle), loaded: Object.fromEntries(loaded), wrk },
    };
    const speakers = (usage: Map<string, Usage>) => [...usage.entries()].filter(([n]) => n.endsWith("-speaker")).map(([, u]) => u);
    const figures: LabFigures = {
      arpVip,
      arpKernel,
      failovers,
      trials: trials.length,
      allocations,
      controllerIdleMiB: idle.get("controller")?.rssMiB ?? Number.NaN,
      controllerLoadedMiB: loaded.get("controller")?.peakRssMiB ?? Number.NaN,
      controllerIdleCpu: idle.get("controller")?.cpuPercent ?? Number.NaN,
      speakerIdleMiB: median(speakers(idle).map((u) => u.rssMiB)),
      speakerLoadedMiB: median(speakers(loaded).map((u) => u.peakRssMiB)),
      speakerIdleCpu: median(speakers(idle).map((u) => u.cpuPercent)),
    };
    return { version, output, figures };
  }
}

/** Bollard's lab output as before, MetalLB's tables after it, and a side-by-side table of both. */
function combine(outputs: Array<{ implementation: LabImplementation; version: string; output: PartOutput; figures: LabFigures }>): PartOutput {
  const bollard = outputs.find((o) => o.implementation === "bollard");
  const metallb = outputs.find((o) => o.implementation === "metallb");
  const tables: Table[] = [];
  const verdicts: Verdict[] = [];
  const notes: string[] = [];
  const commands: string[] = [];
  for (const o of outputs) {
    const prefix = o.implementation === "metallb" ? `MetalLB ${o.version} in the same lab — ` : "";
    tables.push(...o.output.tables.map((t) => ({ ...t, ...(t.caption === undefined ? {} : { caption: `${prefix}${t.caption}` }) })));
    if (o.implementation === "bollard") verdicts.push(...o.output.verdicts);
    notes.push(...o.output.notes.map((n) => `${prefix}${n}`));
    commands.push(...o.output.commands.map((c) => (o.implementation === "metallb" ? c.replace("startLab({", 'startLab({ implementation: "metallb",') : c)));
  }
  if (bollard !== undefined && metallb !== undefined) {
    const b = bollard.figures;
    const m = metallb.figures;
    // p50 as the median (as #8's verdict), other percentiles nearest-rank.
    const p = (values: number[], q: number) => fmt(q === 50 ? median(values.filter(Number.isFinite)) : percentile(values.filter(Number.isFinite), q), "ms");
    const row = (what: string, ours: string, theirs: string) => [what, ours, theirs];
    tables.push({
      caption: `#17 side by side: Bollard and MetalLB ${metallb.version} (controller + L2 speakers with memberlist, its manifest's args) in the same ${NODES}-node lab, one after the other in one run`,
      columns: ["measure", "Bollard", `MetalLB ${metallb.version}`],
      rows: [
        row(`ARP answer, median / p99 (${ARP_PROBES} arpings)`, `${p(b.arpVip, 50)} / ${p(b.arpVip, 99)}`, `${p(m.arpVip, 50)} / ${p(m.arpVip, 99)}`),
        row(`L2 failover, p50 / max (${TRIALS} trials)`, `${p(b.failovers, 50)} / ${fmt(Math.max(...b.failovers), "ms")} (${b.failovers.length}/${b.trials} recovered)`, `${p(m.failovers, 50)} / ${fmt(Math.max(...m.failovers), "ms")} (${m.failovers.length}/${m.trials} recovered)`),
        row(`allocation, p50 / p99 (${ALLOCATIONS} Services, created to status)`, `${p(b.allocations, 50)} / ${p(b.allocations, 99)}`, `${p(m.allocations, 50)} / ${p(m.allocations, 99)}`),
        row("controller RSS idle / loaded peak", `${fmt(b.controllerIdleMiB, "MiB")} / ${fmt(b.controllerLoadedMiB, "MiB")}`, `${fmt(m.controllerIdleMiB, "MiB")} / ${fmt(m.controllerLoadedMiB, "MiB")}`),
        row("speaker RSS idle / loaded peak (median of nodes)", `${fmt(b.speakerIdleMiB, "MiB")} / ${fmt(b.speakerLoadedMiB, "MiB")}`, `${fmt(m.speakerIdleMiB, "MiB")} / ${fmt(m.speakerLoadedMiB, "MiB")}`),
        row("idle CPU: controller / speaker (median)", `${fmt(b.controllerIdleCpu)} % / ${fmt(b.speakerIdleCpu)} %`, `${fmt(m.controllerIdleCpu)} % / ${fmt(m.speakerIdleCpu)} %`),
      ],
    });
    verdicts.push({
      id: "17.6",
      what: `L2 failover beside MetalLB ${metallb.version} (${TRIALS} trials each, same run)`,
      target: "p50 < 1 s",
      measured: `Bollard p50 ${p(b.failovers, 50)}, MetalLB p50 ${p(m.failovers, 50)} (${m.failovers.length} of ${m.trials} trials recovered within ${LOOP_AFTER_MS / 1000} s)`,
      met: b.failovers.length === TRIALS && median(b.failovers) < 1000,
    });
    notes.push(
      `MetalLB in the lab: its manifest (config/manifests/metallb-native.yaml of ${metallb.version}, built by test/harness/build-metallb.sh) applied but for the webhook configuration (no webhook server runs: the controller gets --webhook-mode=disabled --disable-cert-rotation) and the Deployment/DaemonSet, which the lab runs itself: the controller on the host with its ServiceAccount's token, a speaker per node as nobody with CAP_NET_RAW, each with the container's args and environment (downward API filled in; memberlist on the node's address with the key file), and speaker Pod objects whose pod IP is the node's (memberlist finds its peers by listing them). Bollard's ingress serves the demo in both labs; MetalLB's controller gives its Service the address.`,
    );
  }
  return { commands, tables, verdicts, notes, data: outputs.map((o) => ({ implementation: o.implementation, version: o.version, figures: o.figures, data: o.output.data })) };
}

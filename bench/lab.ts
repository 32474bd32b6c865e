// #7 ARP answer latency, #8 L2 failover and #9 resource use, in the lab (@bollard/lab's startLab: a real control
// plane, node and client network namespaces, Bollard's controller, speakers and ingresses as real processes).
// All traffic stays inside the lab's own namespaces.
import { cp, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { type Lab, startLab } from "@bollard/lab";
import { ingressAddress } from "./lib/lab.ts";
import type { Part, PartOutput, Table, Verdict } from "./lib/part.ts";
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

export const part: Part = {
  name: "lab",
  title: "#7–#9 ARP answers, L2 failover and resource use, in the lab",
  async run(ctx): Promise<PartOutput> {
    ctx.log(`starting a lab with ${NODES} nodes`);
    const lab = await startLab({ nodes: NODES, log: (l) => ctx.log(`lab: ${l}`) });
    ctx.scope.defer(() => lab.down());
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
          [`bollard speaker (${vip})`, `${arpVip.length}/${ARP_PROBES}`, fmt(arpMedian, "ms"), fmt(percentile(arpVip, 90), "ms"), fmt(percentile(arpVip, 99), "ms"), ratio(arpMedian, median(arpKernel))],
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
        caption: `#9: CPU (% of one core) and RSS of Bollard's processes in the lab, ${IDLE_MS / 1000} s idle, then during ${LOAD_S} s of load #1's shape through the address after a 3 s warm-up (\`wrk -t1 -c64\` from the client: ${fmt(wrk.requestsPerSec)} req/s, p99 ${fmt(wrk.p99, "ms")}, ${wrk.totalErrors} errors; every process shares this machine's CPUs, unpinned). Medians over the nodes where there are several:`,
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
    return {
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
      data: { ingressProblems: ingressProblems.slice(0, 50), vip, announcer: announcer.name, arpVip, arpKernel, trials, idle: Object.fromEntries(idle), loaded: Object.fromEntries(loaded), wrk },
    };
  },
};

// The lab router as BIRD 2 (Debian's bird2): one BGP protocol per neighbor, BFD from `protocol bfd`, and kernel
// protocols exporting the BGP routes with `merge paths on`, so two nodes' equal paths become one ECMP route in the
// namespace's kernel. Configuration is rendered from checked data (addresses, AS numbers, passwords without
// quotes), never from free text.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { isIPv4 } from "node:net";
import { join } from "node:path";
import { execIn } from "../network/exec.ts";
import { checkRouterOptions, type LabBgpRouter, RouterConfigError, type RouterOptions, stopDaemons, waitFor } from "./router.ts";

export interface BirdRouter extends LabBgpRouter {
  daemon: "bird";
  /** Runs `birdc` against this BIRD and returns its output. */
  birdc(args: string[]): Promise<string>;
}

/** The protocol name BIRD knows a neighbor by. */
const protocolName = (index: number) => `n${index}`;

export function renderBirdConfig(options: Omit<RouterOptions, "netns" | "dir">, logPath: string): string {
  checkRouterOptions(options);
  const lines = [
    `router id ${options.routerId};`,
    `log "${logPath}" all;`,
    "timeformat protocol iso long;",
    "timeformat route iso long;",
    "protocol device {}",
    // Only BGP's routes go to the kernel; several equal ones as one multipath route.
    "protocol kernel kernel4 { ipv4 { export where source = RTS_BGP; }; merge paths on; }",
    "protocol kernel kernel6 { ipv6 { export where source = RTS_BGP; }; merge paths on; }",
  ];
  // BIRD sets BFD timers per interface, not per neighbor: the sessions BGP asks for (`bfd on`) share them.
  const timers = [...new Set(options.neighbors.flatMap((n) => (n.bfd ? [JSON.stringify(n.bfd)] : [])))];
  if (timers.length > 1) throw new RouterConfigError("BIRD: every BFD neighbor must have the same timers");
  if (timers[0] !== undefined) {
    const t = JSON.parse(timers[0]) as NonNullable<RouterOptions["neighbors"][number]["bfd"]>;
    lines.push(`protocol bfd { interface "*" { min rx interval ${t.receiveMs} ms; min tx interval ${t.transmitMs} ms; idle tx interval 1000 ms; multiplier ${t.multiplier}; }; }`);
  }
  for (const [i, n] of options.neighbors.entries()) {
    lines.push(
      `protocol bgp ${protocolName(i)} {`,
      `  local as ${options.asn};`,
      `  neighbor ${n.address} as ${n.asn};`,
      `  graceful restart ${options.gracefulRestart ? "on" : "off"};`,
      ...(n.password !== undefined ? [`  password "${n.password}";`] : []),
      ...(n.bfd ? ["  bfd on;"] : []),
      // The node's own family carries its prefixes; both are offered, as the FRR router activates both.
      ...(isIPv4(n.address) ? ["  ipv4 { import all; export none; };", "  ipv6 { import all; export none; };"] : ["  ipv6 { import all; export none; };"]),
      "}",
    );
  }
  return `${lines.join("\n")}\n`;
}

export async function startBirdRouter(options: RouterOptions): Promise<BirdRouter> {
  const { netns, dir } = options;
  mkdirSync(dir, { recursive: true });
  const config = renderBirdConfig(options, join(dir, "bird.log"));
  writeFileSync(join(dir, "bird.conf"), config, { mode: 0o600 });
  const socket = join(dir, "bird.ctl");
  // setpriv --pdeathsig: BIRD dies with the process that started it, even if that one is killed.
  const child: ChildProcess = spawn("ip", ["netns", "exec", netns, "setpriv", "--pdeathsig", "KILL", "--", "bird", "-f", "-c", join(dir, "bird.conf"), "-s", socket, "-P", join(dir, "bird.pid")], { stdio: "ignore" });
  const birdc = async (args: string[]) => (await execIn(netns, "birdc", ["-s", socket, ...args], { timeoutMs: 10_000, allowFailure: true })).stdout;
  const names = new Map(options.neighbors.map((n, i) => [protocolName(i), n.address]));
  const stop = () => stopDaemons([child]);

  try {
    await waitFor(async () => (await birdc(["show", "status"])).includes("Daemon is up and running"), 20_000, "BIRD to answer");
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    daemon: "bird",
    birdc,
    async paths(prefix) {
      const out = await birdc(["show", "route", "for", prefix, "all"]);
      const paths: { nextHop: string; peer: string; bestpath: boolean; multipath: boolean }[] = [];
      // Each route starts with `[<protocol> <since> ...]`; its `via <next hop>` line follows.
      for (const block of out.split(/\n(?=\S|\s+unicast)/)) {
        const head = /unicast \[(\w+)[^\]]*\](\s\*)?/.exec(block);
        const via = /\bvia (\S+)/.exec(block);
        const peer = head ? names.get(head[1] as string) : undefined;
        if (head && via && peer) paths.push({ nextHop: via[1] as string, peer, bestpath: head[2] !== undefined, multipath: false });
      }
      // BIRD does not mark multipath in its RIB; the kernel protocol merges every path equal to the best one.
      return paths;
    },
    async established() {
      const out = await birdc(["show", "protocols"]);
      return out
        .split("\n")
        .map((l) => /^(n\d+)\s+BGP\s.*\bEstablished\b/.exec(l)?.[1])
        .filter((n): n is string => n !== undefined)
        .map((n) => names.get(n) as string)
        .sort();
    },
    async bfdPeers() {
      const out = await birdc(["show", "bfd", "sessions"]);
      return out
        .split("\n")
        .map((l) => /^(\S+)\s+\S+\s+(Up|Down|Init|AdminDown)\b/.exec(l.trim()))
        .filter((m): m is RegExpExecArray => m !== null && [...names.values()].includes(m[1] as string))
        .map((m) => ({ peer: m[1] as string, up: m[2] === "Up" }));
    },
    pids: () => (child.pid ? [child.pid] : []),
    stop,
  };
}

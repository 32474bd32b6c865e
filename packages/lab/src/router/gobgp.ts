// The lab router as GoBGP (Debian's gobgpd). GoBGP does not touch the kernel itself; its way is to hand its paths
// to a zebra over the zebra API, but Debian's gobgpd 3.10 panics decoding FRR 8.4's zebra messages (an interface
// update), so the lab keeps the kernel in step with GoBGP's RIB itself (`syncKernel`, a stand-in for that FIB
// manager, as the lab has one for kube-proxy): every 200 ms it reads the RIB and installs each prefix with the
// next hops of its best path and of the paths equal to it (what `use-multiple-paths` calls multipath: same
// local-pref, AS path length, origin and MED), `proto bgp`. GoBGP has no BFD, so a neighbor asking for BFD is
// refused. Configuration is rendered from checked data, never from free text.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execIn } from "../network/exec.ts";
import { checkRouterOptions, type LabBgpRouter, RouterConfigError, type RouterOptions, stopDaemons, waitFor } from "./router.ts";

export interface GobgpRouter extends LabBgpRouter {
  daemon: "gobgp";
  /** Runs the `gobgp` CLI against this gobgpd (its API on the namespace's 127.0.0.1:50051) and returns its output. */
  gobgp(args: string[]): Promise<string>;
}

/** gobgpd's gRPC API, on the router namespace's own loopback: `gobgp`'s default, so `lab exec router -- gobgp` works. */
export const GOBGP_API = { host: "127.0.0.1", port: 50051 };

export function renderGobgpConfig(options: Omit<RouterOptions, "netns" | "dir">): string {
  checkRouterOptions(options);
  const bfd = options.neighbors.find((n) => n.bfd);
  if (bfd) throw new RouterConfigError(`neighbor ${bfd.address}: GoBGP has no BFD`);
  const gr = options.gracefulRestart === true;
  const family = (name: string) => `  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = "${name}"\n${gr ? "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n" : ""}`;
  const neighbors = options.neighbors.map(
    (n) =>
      `[[neighbors]]\n  [neighbors.config]\n    neighbor-address = "${n.address}"\n    peer-as = ${n.asn}\n${n.password !== undefined ? `    auth-password = "${n.password}"\n` : ""}${gr ? "  [neighbors.graceful-restart.config]\n    enabled = true\n    helper-only = true\n" : ""}${family("ipv4-unicast")}${family("ipv6-unicast")}`,
  );
  return `[global.config]
  as = ${options.asn}
  router-id = "${options.routerId}"
[global.use-multiple-paths.config]
  enabled = true
${neighbors.join("")}`;
}

export async function startGobgpRouter(options: RouterOptions): Promise<GobgpRouter> {
  const { netns, dir } = options;
  const config = renderGobgpConfig(options);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "gobgpd.toml"), config, { mode: 0o600 });
  const children: ChildProcess[] = [];
  // setpriv --pdeathsig: the daemons die with the process that started them, even if it is killed.
  const start = (argv: string[], logPath?: string) => {
    const log = logPath ? openSync(logPath, "a") : "ignore";
    const child = spawn("ip", ["netns", "exec", netns, "setpriv", "--pdeathsig", "KILL", "--", ...argv], { stdio: ["ignore", log, log] });
    if (typeof log === "number") closeSync(log);
    children.push(child);
  };
  const gobgp = async (args: string[]) => (await execIn(netns, "gobgp", ["-u", GOBGP_API.host, "-p", String(GOBGP_API.port), ...args], { timeoutMs: 10_000 })).stdout;
  const syncing = new AbortController();
  let synced: Promise<void> = Promise.resolve();
  const stop = async () => {
    syncing.abort();
    await synced;
    await stopDaemons(children);

  };
  try {
    start(["gobgpd", "-f", join(dir, "gobgpd.toml"), "--api-hosts", `${GOBGP_API.host}:${GOBGP_API.port}`, "-l", "info", "--log-plain", "--pprof-disable"], join(dir, "gobgpd.log"));
    await waitFor(async () => (await gobgp(["global"])).includes("AS"), 20_000, "gobgpd to answer");
    synced = syncKernel(netns, gobgp, syncing.signal);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    daemon: "gobgp",
    gobgp,
    async paths(prefix) {
      const afi = prefix.includes(":") ? "ipv6" : "ipv4";
      const json = JSON.parse((await gobgp(["global", "rib", "-a", afi, prefix, "-j"])) || "{}") as Record<string, RibPath[]>;
      return (json[prefix] ?? []).map((p) => {
        const hop = p.attrs.find((a) => a.type === 3)?.nexthop ?? p.attrs.find((a) => a.type === 14)?.nexthop ?? "";
        return { nextHop: hop, peer: p["neighbor-ip"] ?? "", bestpath: p.best === true, multipath: false };
      });
    },
    async established() {
      const json = JSON.parse((await gobgp(["neighbor", "-j"])) || "[]") as { conf?: { neighbor_address?: string }; state?: { session_state?: number | string } }[];
      return json
        .filter((n) => n.state?.session_state === 6 || String(n.state?.session_state).toLowerCase() === "established")
        .map((n) => n.conf?.neighbor_address ?? "")
        .sort();
    },
    bfdPeers: async () => [],
    pids: () => children.map((c) => c.pid ?? 0).filter((p) => p > 0),
    stop,
  };
}

type RibPath = {
  "neighbor-ip"?: string;
  best?: boolean;
  attrs: { type: number; nexthop?: string; value?: number; as_paths?: { asns: number[] }[]; metric?: number }[];
};

/** The next hops a prefix is forwarded to: its best path's and those of the paths equal to it for multipath. */
export function multipathNextHops(paths: readonly RibPath[]): string[] {
  const best = paths.find((p) => p.best) ?? paths[0];
  if (best === undefined) return [];
  const attr = (p: RibPath, type: number) => p.attrs.find((a) => a.type === type);
  const key = (p: RibPath) =>
    JSON.stringify([attr(p, 5)?.value ?? 100, (attr(p, 2)?.as_paths ?? []).reduce((n, s) => n + s.asns.length, 0), attr(p, 1)?.value ?? 0, attr(p, 4)?.metric ?? 0]);
  const hop = (p: RibPath) => attr(p, 3)?.nexthop ?? attr(p, 14)?.nexthop ?? "";
  return [...new Set(paths.filter((p) => key(p) === key(best)).map(hop).filter((h) => h !== ""))].sort();
}

/** Keeps the namespace's `proto bgp` kernel routes equal to GoBGP's RIB until `signal` aborts. */
async function syncKernel(netns: string, gobgp: (args: string[]) => Promise<string>, signal: AbortSignal): Promise<void> {
  let installed = new Map<string, string>();
  let failures = 0;
  while (!signal.aborted) {
    try {
      const wanted = new Map<string, string[]>();
      for (const afi of ["ipv4", "ipv6"]) {
        const rib = JSON.parse((await gobgp(["global", "rib", "-a", afi, "-j"])) || "{}") as Record<string, RibPath[]>;
        for (const [prefix, paths] of Object.entries(rib)) {
          const hops = multipathNextHops(paths);
          if (hops.length > 0) wanted.set(prefix, hops);
        }
      }
      const next = new Map<string, string>();
      for (const [prefix, hops] of wanted) {
        const key = hops.join(",");
        next.set(prefix, key);
        if (installed.get(prefix) === key) continue;
        const via = hops.length === 1 ? ["via", hops[0] as string] : hops.flatMap((h) => ["nexthop", "via", h]);
        await execIn(netns, "ip", ["route", "replace", prefix, "proto", "bgp", ...via]);
      }
      for (const prefix of installed.keys()) if (!next.has(prefix)) await execIn(netns, "ip", ["route", "del", prefix, "proto", "bgp"], { allowFailure: true });
      installed = next;
      failures = 0;
    } catch {
      failures++; // gobgpd restarting or stopping: try again, backing off to 2 s
    }
    await new Promise((r) => setTimeout(r, Math.min(2000, 200 * 2 ** Math.min(failures, 4))));
  }
}

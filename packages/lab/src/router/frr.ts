// A real router for BGP mode: FRR's zebra, bgpd and bfdd (Debian's frr package) in a network namespace, peered
// with the nodes' speakers. zebra installs what bgpd learns into the namespace's kernel table, so the router
// forwards to a Service address over the nodes (ECMP) exactly as its RIB says; bfdd tears a node's session down
// within BFD's detection time. Configuration is rendered from typed data (addresses are checked to be IP
// addresses, passwords to be printable without spaces), never from free text.
import { type ChildProcess, spawn } from "node:child_process";
import { chownSync, mkdirSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { execIn, run } from "../network/exec.ts";
import { type LabBgpRouter, type RouterNeighbor, type RouterOptions, stopDaemons, waitFor } from "./router.ts";

export type FrrNeighbor = RouterNeighbor;
/**
 * `dir` is handed to the frr user. `networks`: prefixes bgpd originates itself (whether or not the kernel has a
 * route for them), for FRR in a node's place as the speaker (bench/bgp.ts's reference); `hostname` names it.
 */
export type FrrRouterOptions = RouterOptions & { networks?: readonly string[]; hostname?: string };

export interface FrrRouter extends LabBgpRouter {
  daemon: "frr";
  /** Runs one vtysh command against a daemon (`bgpd`, `bfdd`, `zebra`) and returns its output. */
  vtysh(daemon: "bgpd" | "bfdd" | "zebra", command: string): Promise<string>;
  /** `show bgp <family> unicast <prefix> json`'s paths: next hop and peer of each. */
  paths(prefix: string): Promise<{ nextHop: string; peer: string; bestpath: boolean; multipath: boolean }[]>;
  /** Neighbors whose BGP session is Established. */
  established(): Promise<string[]>;
  /** The daemons' process ids. */
  pids(): number[];
  stop(): Promise<void>;
}

export class FrrConfigError extends Error {
  override name = "FrrConfigError";
}

const PASSWORD = /^[\x21-\x7e]{1,80}$/;

export function renderFrrConfig(options: Omit<FrrRouterOptions, "netns" | "dir">): { bgpd: string; bfdd: string; zebra: string } {
  if (isIP(options.routerId) !== 4) throw new FrrConfigError(`router ID ${options.routerId} is not an IPv4 address`);
  const asn = (n: number) => {
    if (!Number.isInteger(n) || n < 1 || n > 4294967295) throw new FrrConfigError(`${n} is not an AS number`);
    return n;
  };
  // Each daemon logs with microsecond timestamps and logs its session changes (bfdd's state changes, bgpd's
  // neighbor up/down), so a withdrawal can be taken apart afterwards (bench/bgp.ts reads these logs).
  const logging = ["log timestamp precision 6"];
  const hostname = options.hostname ?? "router";
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(hostname)) throw new FrrConfigError(`hostname ${JSON.stringify(hostname)} is not a lowercase DNS label`);
  const networks = (options.networks ?? []).map((prefix) => {
    const [address = "", length = "", ...rest] = prefix.split("/");
    const family = isIP(address);
    const bits = Number(length);
    if (family === 0 || rest.length > 0 || !/^\d{1,3}$/.test(length) || bits > (family === 4 ? 32 : 128)) throw new FrrConfigError(`${prefix} is not an IP prefix`);
    return { prefix, family: family === 4 ? "ipv4" : "ipv6" };
  });
  const lines = ["frr defaults traditional", `hostname ${hostname}`, ...logging, `router bgp ${asn(options.asn)}`, ` bgp router-id ${options.routerId}`, " bgp log-neighbor-changes", " no bgp ebgp-requires-policy", " no bgp default ipv4-unicast"];
  // Originated prefixes need no route in the kernel: the speaker's addresses are not on an interface either.
  if (networks.length > 0) lines.push(" no bgp network import-check");
  lines.push(options.gracefulRestart ? " bgp graceful-restart" : " bgp graceful-restart-disable");
  const profiles: string[] = [...logging, "debug bfd peer", "bfd"];
  for (const [i, n] of options.neighbors.entries()) {
    if (isIP(n.address) === 0) throw new FrrConfigError(`neighbor ${n.address} is not an IP address`);
    lines.push(` neighbor ${n.address} remote-as ${asn(n.asn)}`);
    if (n.password !== undefined) {
      if (!PASSWORD.test(n.password)) throw new FrrConfigError("a neighbor password must be 1..80 printable characters without spaces");
      lines.push(` neighbor ${n.address} password ${n.password}`);
    }
    if (n.bfd) {
      for (const v of [n.bfd.receiveMs, n.bfd.transmitMs]) if (!Number.isInteger(v) || v < 10 || v > 60000) throw new FrrConfigError(`BFD interval ${v} is not 10..60000 ms`);
      if (!Number.isInteger(n.bfd.multiplier) || n.bfd.multiplier < 2 || n.bfd.multiplier > 255) throw new FrrConfigError(`BFD multiplier ${n.bfd.multiplier} is not 2..255`);
      profiles.push(` profile n${i}`, `  receive-interval ${n.bfd.receiveMs}`, `  transmit-interval ${n.bfd.transmitMs}`, `  detect-multiplier ${n.bfd.multiplier}`, " !");
      lines.push(` neighbor ${n.address} bfd`, ` neighbor ${n.address} bfd profile n${i}`);
    }
  }
  for (const family of ["ipv4", "ipv6"]) {
    lines.push(` address-family ${family} unicast`, "  maximum-paths 16", "  maximum-paths ibgp 16");
    for (const n of options.neighbors) lines.push(`  neighbor ${n.address} activate`);
    for (const n of networks) if (n.family === family) lines.push(`  network ${n.prefix}`);
    lines.push(" exit-address-family");
  }
  return { bgpd: `${lines.join("\n")}\n`, bfdd: `${profiles.join("\n")}\n!\n`, zebra: `hostname ${hostname}\n${logging.join("\n")}\n` };
}

export async function startFrrRouter(options: FrrRouterOptions): Promise<FrrRouter> {
  const { netns, dir } = options;
  const config = renderFrrConfig(options);
  mkdirSync(dir, { recursive: true });
  const uid = Number((await run("id", ["-u", "frr"])).stdout.trim());
  const gid = Number((await run("id", ["-g", "frr"])).stdout.trim());
  chownSync(dir, uid, gid);
  for (const [daemon, text] of Object.entries(config)) {
    // The log file is named in the configuration, not by --log: only that target takes the timestamp precision.
    writeFileSync(join(dir, `${daemon}.conf`), `log file ${join(dir, `${daemon}.log`)}\n${text}`, { mode: 0o640 });
    chownSync(join(dir, `${daemon}.conf`), uid, gid);
  }
  const zserv = join(dir, "zserv.api");
  const common = (daemon: string) => ["-u", "frr", "-g", "frr", "-f", join(dir, `${daemon}.conf`), "-i", join(dir, `${daemon}.pid`), "--vty_socket", dir, "-z", zserv];
  const children: ChildProcess[] = [];
  const daemon = (name: string, extra: string[]) => {
    // setpriv --pdeathsig: the daemons die with the process that started them, even if it is killed.
    const child = spawn("ip", ["netns", "exec", netns, "setpriv", "--pdeathsig", "KILL", "--", `/usr/lib/frr/${name}`, ...common(name), ...extra], { stdio: "ignore" });
    children.push(child);
    return child;
  };
  const vtysh = async (d: "bgpd" | "bfdd" | "zebra", command: string) => (await execIn(netns, "vtysh", ["--vty_socket", dir, "-d", d, "-c", command], { timeoutMs: 10_000 })).stdout;
  const stop = () => stopDaemons(children);
  try {
    daemon("zebra", ["-P", "0"]);
    await waitFor(async () => (await vtysh("zebra", "show version")).includes("FRRouting"), 20_000, "zebra to answer");
    daemon("bfdd", ["-P", "0", "--bfdctl", join(dir, "bfdd.sock")]);
    daemon("bgpd", ["-P", "0"]);
    await waitFor(async () => (await vtysh("bgpd", "show bgp summary json")).includes("routerId"), 20_000, "bgpd to answer");
    await waitFor(async () => (await vtysh("bfdd", "show bfd peers json")).trim().startsWith("["), 20_000, "bfdd to answer");
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    daemon: "frr",
    vtysh,
    async bfdPeers() {
      const peers = JSON.parse(await vtysh("bfdd", "show bfd peers json")) as { peer: string; status: string }[];
      return peers.map((p) => ({ peer: p.peer, up: p.status === "up" }));
    },
    async paths(prefix) {
      const family = prefix.includes(":") ? "ipv6" : "ipv4";
      const json = JSON.parse(await vtysh("bgpd", `show bgp ${family} unicast ${prefix} json`)) as {
        paths?: { nexthops?: { ip?: string }[]; peer?: { peerId?: string }; bestpath?: { overall?: boolean }; multipath?: boolean }[];
      };
      return (json.paths ?? []).map((p) => ({ nextHop: p.nexthops?.[0]?.ip ?? "", peer: p.peer?.peerId ?? "", bestpath: p.bestpath?.overall === true, multipath: p.multipath === true }));
    },
    async established() {
      const json = JSON.parse(await vtysh("bgpd", "show bgp neighbors json")) as Record<string, { bgpState?: string }>;
      return Object.entries(json)
        .filter(([, n]) => n.bgpState === "Established")
        .map(([address]) => address)
        .sort();
    },
    pids: () => children.map((c) => c.pid ?? 0).filter((p) => p > 0),
    stop,
  };
}

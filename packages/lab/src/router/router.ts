// What the lab asks of its router, whichever daemon runs it (FRR, BIRD or GoBGP): the sessions, the paths it
// learnt for a prefix, its BFD sessions, and stopping it. Each daemon installs its best routes — several next
// hops for an ECMP route — in the router namespace's kernel, which is what forwards the client's traffic.
import type { ChildProcess } from "node:child_process";
import { isIP } from "node:net";

export type RouterDaemon = "frr" | "bird" | "gobgp";
export const ROUTER_DAEMONS: readonly RouterDaemon[] = ["frr", "bird", "gobgp"];

export type RouterNeighbor = {
  address: string;
  asn: number;
  /** TCP MD5 password (RFC 2385). */
  password?: string;
  /** Single-hop BFD with these timers (ms). GoBGP has no BFD: refused there. */
  bfd?: { receiveMs: number; transmitMs: number; multiplier: number };
};

export type RouterOptions = {
  netns: string;
  /** Where the configuration, sockets, pid files and logs go; made here. */
  dir: string;
  asn: number;
  routerId: string;
  neighbors: RouterNeighbor[];
  /** Act as graceful-restart helper (keep a restarting speaker's routes as stale). */
  gracefulRestart?: boolean;
};

export type RouterPath = { nextHop: string; peer: string; bestpath: boolean; multipath: boolean };

export interface LabBgpRouter {
  daemon: RouterDaemon;
  /** The paths the router holds for a prefix (`10.0.0.1/32`), one per announcing neighbor. */
  paths(prefix: string): Promise<RouterPath[]>;
  /** Neighbors whose BGP session is Established, sorted. */
  established(): Promise<string[]>;
  /** The router's BFD sessions (none for GoBGP, which has no BFD). */
  bfdPeers(): Promise<{ peer: string; up: boolean }[]>;
  /** The daemons' process ids. */
  pids(): number[];
  stop(): Promise<void>;
}

export class RouterConfigError extends Error {
  override name = "RouterConfigError";
}

const PASSWORD = /^[\x21-\x7e]{1,80}$/;

/** The checks every daemon's configuration renderer makes before writing anything. */
export function checkRouterOptions(options: Omit<RouterOptions, "netns" | "dir">): void {
  if (isIP(options.routerId) !== 4) throw new RouterConfigError(`router ID ${options.routerId} is not an IPv4 address`);
  checkAsn(options.asn);
  for (const n of options.neighbors) {
    if (isIP(n.address) === 0) throw new RouterConfigError(`neighbor ${n.address} is not an IP address`);
    checkAsn(n.asn);
    // No quotes, backslashes or spaces: a password is written inside each daemon's own quoting.
    if (n.password !== undefined && (!PASSWORD.test(n.password) || /["'\\]/.test(n.password))) {
      throw new RouterConfigError("a neighbor password must be 1..80 printable characters without spaces, quotes or backslashes");
    }
    if (n.bfd) {
      for (const v of [n.bfd.receiveMs, n.bfd.transmitMs]) if (!Number.isInteger(v) || v < 10 || v > 60000) throw new RouterConfigError(`BFD interval ${v} is not 10..60000 ms`);
      if (!Number.isInteger(n.bfd.multiplier) || n.bfd.multiplier < 2 || n.bfd.multiplier > 255) throw new RouterConfigError(`BFD multiplier ${n.bfd.multiplier} is not 2..255`);
    }
  }
}

function checkAsn(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 4294967295) throw new RouterConfigError(`${n} is not an AS number`);
}

export async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops a router's daemons: SIGTERM to each still running, SIGKILL to any not gone within 3 s. */
export async function stopDaemons(children: readonly ChildProcess[]): Promise<void> {
  const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;
  await Promise.all(
    children.filter(running).map(
      (child) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
          child.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill("SIGTERM");
        }),
    ),
  );
}

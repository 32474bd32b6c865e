// A network namespace joined to this one by a veth pair, with no other route: somewhere to put backends at
// a non-loopback address (the API server refuses loopback addresses in EndpointSlices). Needs root.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";

export interface BackendNamespace {
  /** the backends' address, inside the namespace */
  address: string;
  startBackend(name: string, port: number): Promise<ChildProcess>;
  /** Makes TCP connections to `port` at `address` hang: the namespace drops their SYNs and never answers. */
  dropConnections(port: number): void;
  destroy(): void;
}

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"] });

export function createBackendNamespace(): BackendNamespace {
  if (process.getuid?.() !== 0) throw new Error("this test needs root to create a network namespace (ip netns)");
  const id = randomBytes(3).toString("hex");
  const ns = `bollard-ing-${id}`;
  const hostSide = `bi${id}h`;
  const nsSide = `bi${id}n`;
  // A /30 in 10.213.0.0/16 chosen at random, checked against the routes already present.
  const routes = ip("-4", "route", "show").toString();
  let subnet = 0;
  do subnet = Math.floor(Math.random() * 16384) * 4;
  while (routes.includes(`10.213.${subnet >> 8}.${subnet & 255}/30`));
  const base = `10.213.${subnet >> 8}.`;
  const hostAddress = `${base}${(subnet & 255) + 1}`;
  const address = `${base}${(subnet & 255) + 2}`;
  const children: ChildProcess[] = [];
  const destroy = () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    try {
      ip("link", "del", hostSide);
    } catch {}
    try {
      ip("netns", "del", ns);
    } catch {}
  };
  try {
    ip("netns", "add", ns);
    ip("link", "add", hostSide, "type", "veth", "peer", "name", nsSide);
    ip("link", "set", nsSide, "netns", ns);
    ip("addr", "add", `${hostAddress}/30`, "dev", hostSide);
    ip("link", "set", hostSide, "up");
    ip("-n", ns, "addr", "add", `${address}/30`, "dev", nsSide);
    ip("-n", ns, "link", "set", nsSide, "up");
    ip("-n", ns, "link", "set", "lo", "up");
  } catch (err) {
    destroy();
    throw err;
  }
  return {
    address,
    startBackend(name, port) {
      const child = spawn("ip", ["netns", "exec", ns, process.execPath, join(import.meta.dirname, "echo-backend-main.ts"), name, address, String(port)], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      children.push(child);
      return new Promise((resolve, reject) => {
        child.once("exit", (code) => reject(new Error(`backend ${name} exited with ${code}`)));
        child.stdout?.once("data", () => resolve(child));
      });
    },
    dropConnections(port) {
      if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`not a port: ${port}`);
      const ruleset = [
        "add table inet bollard_test",
        "add chain inet bollard_test input { type filter hook input priority 0; policy accept; }",
        `add rule inet bollard_test input tcp dport ${port} drop`,
      ].join("\n");
      execFileSync("ip", ["netns", "exec", ns, "nft", "-f", "-"], { input: `${ruleset}\n`, stdio: ["pipe", "pipe", "pipe"] });
    },
    destroy,
  };
}

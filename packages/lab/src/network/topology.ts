// The lab's network: one "switch" namespace holding a bridge, and one namespace per host (node1…nodeN, client)
// joined to it by a veth pair. The host gets one leg on the bridge too, only so that processes in the node
// namespaces can reach the control plane; no namespace has a route beyond the lab's own subnet.
import { randomBytes } from "node:crypto";
import { ip, run } from "./exec.ts";

export interface LabHost {
  /** node1, node2, …, client */
  name: string;
  netns: string;
  ifname: string;
  ipv4: string;
  ipv6: string;
  mac: string;
}

/** BGP mode's router: on the node LAN (eth0) and, alone, on the client's link (eth1). */
export interface LabRouter {
  netns: string;
  /** Its addresses on the node LAN: where the speakers peer. */
  ipv4: string;
  ipv6: string;
  /** Its addresses on the client's link: the client's default gateway. */
  clientSideIPv4: string;
  clientSideIPv6: string;
  /** The client's link, which the nodes reach through the router. */
  clientSubnetV4: string;
  clientSubnetV6: string;
}

export interface LabNetwork {
  id: string;
  switchNetns: string;
  hostIfname: string;
  /** The host's address on the lab bridge: where the control plane listens for the nodes. */
  hostIPv4: string;
  prefixV4: string;
  prefixV6: string;
  nodes: LabHost[];
  client: LabHost;
  /** With a router (BGP mode), the client is behind it: the router's routes are its only way to a Service. */
  router?: LabRouter;
  /** Addresses on the lab subnet that no host uses: for IPAddressPools. */
  poolRangeV4: string;
  poolRangeV6: string;
}

export class LabSetupError extends Error {
  override name = "LabSetupError";
  readonly step: string;
  constructor(step: string, cause: unknown) {
    super(`lab setup failed at "${step}": ${(cause as Error).message ?? cause}`, { cause });
    this.step = step;
  }
}

/**
 * The lab's IPv6 /64 in the canonical text form (RFC 5952: no leading zeros, "::" for the zero run) so that
 * addresses built from it compare equal to what the kernel and our own formatters print ("01ae" → "1ae").
 */
export function labPrefixV6(id: string): string {
  const group = Number.parseInt(id, 16);
  return group === 0 ? "fd00:b011::" : `fd00:b011:${group.toString(16)}::`;
}

export function newLabId(): string {
  return randomBytes(2).toString("hex");
}

/** Every namespace and host interface a lab with this id may have made, for teardown after a crash. */
export function labResourceNames(id: string, nodeCount: number) {
  return {
    switchNetns: `bollard-${id}-sw`,
    hostIfname: `bl${id}`,
    hostNetns: [...Array.from({ length: nodeCount }, (_, i) => `bollard-${id}-node${i + 1}`), `bollard-${id}-client`],
    routerNetns: `bollard-${id}-router`,
  };
}

async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new LabSetupError(name, err);
  }
}

export async function createLabNetwork(opts: { id?: string; nodes?: number; router?: boolean } = {}): Promise<LabNetwork> {
  const id = opts.id ?? newLabId();
  if (!/^[0-9a-f]{4}$/.test(id)) throw new LabSetupError("options", new Error(`a lab id is four lowercase hex digits, got ${JSON.stringify(id)}`));
  const nodeCount = opts.nodes ?? 2;
  if (nodeCount < 1 || nodeCount > 50) throw new LabSetupError("options", new Error(`--nodes must be 1..50, got ${nodeCount}`));
  const names = labResourceNames(id, nodeCount);
  // A /24 per lab, picked from the id so that two labs on one machine do not collide.
  const octet = Number.parseInt(id, 16) % 200 + 20;
  const prefixV4 = `10.251.${octet}`;
  const prefixV6 = labPrefixV6(id);
  await step("check tools", async () => {
    if (process.getuid?.() !== 0) throw new Error("the lab needs root (network namespaces)");
    await run("ip", ["-V"]);
  });
  const hosts: LabHost[] = [];
  try {
    await step("create switch namespace", async () => {
      await ip(["netns", "add", names.switchNetns]);
      await ip(["-n", names.switchNetns, "link", "set", "lo", "up"]);
      await ip(["-n", names.switchNetns, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0", "stp_state", "0"]);
      await ip(["-n", names.switchNetns, "link", "set", "br0", "up"]);
    });
    const hostNames = [...Array.from({ length: nodeCount }, (_, i) => `node${i + 1}`), "client"];
    for (const [i, name] of hostNames.entries()) {
      const netns = names.hostNetns[i] as string;
      const hostNo = name === "client" ? 100 : 10 + i + 1;
      const host: LabHost = {
        name,
        netns,
        ifname: "eth0",
        ipv4: `${prefixV4}.${hostNo}`,
        ipv6: `${prefixV6}${hostNo.toString(16)}`,
        mac: "",
      };
      const behindRouter = opts.router === true && name === "client";
      if (behindRouter) {
        host.ipv4 = `10.252.${octet}.100`;
        host.ipv6 = `fd00:b012:${id}::64`;
      }
      await step(`create ${name}`, async () => {
        await ip(["netns", "add", netns]);
        await ip(["-n", netns, "link", "set", "lo", "up"]);
        if (behindRouter) {
          // Its link goes to the router, made below; the client gets its address then.
          return;
        }
        await ip(["-n", names.switchNetns, "link", "add", `p-${name}`, "type", "veth", "peer", "name", "eth0", "netns", netns]);
        await ip(["-n", names.switchNetns, "link", "set", `p-${name}`, "master", "br0", "up"]);
        await ip(["-n", netns, "addr", "add", `${host.ipv4}/24`, "dev", "eth0"]);
        await ip(["-n", netns, "addr", "add", `${host.ipv6}/64`, "dev", "eth0", "nodad"]);
        await ip(["-n", netns, "link", "set", "eth0", "up"]);
        const link = JSON.parse((await ip(["-n", netns, "-j", "link", "show", "eth0"])).stdout) as { address: string }[];
        host.mac = link[0]?.address ?? "";
      });
      hosts.push(host);
    }
    if (opts.router === true) {
      const client = hosts.find((h) => h.name === "client") as LabHost;
      await step("create router: on the node LAN and the client's only way out", async () => {
        const r = names.routerNetns;
        await ip(["netns", "add", r]);
        await ip(["-n", r, "link", "set", "lo", "up"]);
        await ip(["-n", names.switchNetns, "link", "add", "p-router", "type", "veth", "peer", "name", "eth0", "netns", r]);
        await ip(["-n", names.switchNetns, "link", "set", "p-router", "master", "br0", "up"]);
        await ip(["-n", r, "addr", "add", `${prefixV4}.250/24`, "dev", "eth0"]);
        await ip(["-n", r, "addr", "add", `${prefixV6}fa/64`, "dev", "eth0", "nodad"]);
        await ip(["-n", r, "link", "set", "eth0", "up"]);
        await ip(["-n", r, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", client.netns]);
        await ip(["-n", r, "addr", "add", `10.252.${octet}.1/24`, "dev", "eth1"]);
        await ip(["-n", r, "addr", "add", `fd00:b012:${id}::1/64`, "dev", "eth1", "nodad"]);
        await ip(["-n", r, "link", "set", "eth1", "up"]);
        await run("ip", ["netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1"]);
        await ip(["-n", client.netns, "addr", "add", `${client.ipv4}/24`, "dev", "eth0"]);
        await ip(["-n", client.netns, "addr", "add", `${client.ipv6}/64`, "dev", "eth0", "nodad"]);
        await ip(["-n", client.netns, "link", "set", "eth0", "up"]);
        await ip(["-n", client.netns, "route", "add", "default", "via", `10.252.${octet}.1`]);
        await ip(["-n", client.netns, "-6", "route", "add", "default", "via", `fd00:b012:${id}::1`]);
        const link = JSON.parse((await ip(["-n", client.netns, "-j", "link", "show", "eth0"])).stdout) as { address: string }[];
        client.mac = link[0]?.address ?? "";
        // ECMP spreads flows by ports too (the default hashes addresses only: one client would use one node).
        // The nodes answer the client through the router, as they would through their default gateway.
        for (const node of hosts.filter((h) => h.name !== "client")) {
          await ip(["-n", node.netns, "route", "add", `10.252.${octet}.0/24`, "via", `${prefixV4}.250`]);
          await ip(["-n", node.netns, "-6", "route", "add", `fd00:b012:${id}::/64`, "via", `${prefixV6}fa`]);
        }
      });
    }
    await step("connect the host to the lab bridge", async () => {
      await ip(["link", "add", names.hostIfname, "type", "veth", "peer", "name", "p-host", "netns", names.switchNetns]);
      await ip(["-n", names.switchNetns, "link", "set", "p-host", "master", "br0", "up"]);
      await ip(["addr", "add", `${prefixV4}.1/24`, "dev", names.hostIfname]);
      await ip(["link", "set", names.hostIfname, "up"]);
    });
  } catch (err) {
    await destroyLabNetwork(id, nodeCount);
    throw err;
  }
  return {
    id,
    switchNetns: names.switchNetns,
    hostIfname: names.hostIfname,
    hostIPv4: `${prefixV4}.1`,
    prefixV4,
    prefixV6,
    nodes: hosts.filter((h) => h.name !== "client"),
    client: hosts.find((h) => h.name === "client") as LabHost,
    poolRangeV4: `${prefixV4}.200-${prefixV4}.220`,
    poolRangeV6: `${prefixV6}200-${prefixV6}220`,
    ...(opts.router === true
      ? {
          router: {
            netns: names.routerNetns,
            ipv4: `${prefixV4}.250`,
            ipv6: `${prefixV6}fa`,
            clientSideIPv4: `10.252.${octet}.1`,
            clientSideIPv6: `fd00:b012:${id}::1`,
            clientSubnetV4: `10.252.${octet}.0/24`,
            clientSubnetV6: `fd00:b012:${id}::/64`,
          },
        }
      : {}),
  };
}

/** Removes whatever exists of a lab's namespaces and host interface; never fails on what is already gone. */
export async function destroyLabNetwork(id: string, nodeCount: number): Promise<void> {
  const names = labResourceNames(id, nodeCount);
  await ip(["link", "del", names.hostIfname], { allowFailure: true });
  for (const ns of [...names.hostNetns, names.routerNetns, names.switchNetns]) {
    await ip(["netns", "del", ns], { allowFailure: true });
  }
}

/** Every lab namespace on this machine, whatever its id: for `bollard lab down --all`. */
export async function listLabNamespaces(): Promise<string[]> {
  const out = (await ip(["netns", "list"], { allowFailure: true })).stdout;
  return out
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => /^bollard-[0-9a-f]{4}-(sw|node\d+|client|router)$/.test(n));
}

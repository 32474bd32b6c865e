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

export function newLabId(): string {
  return randomBytes(2).toString("hex");
}

/** Every namespace and host interface a lab with this id may have made, for teardown after a crash. */
export function labResourceNames(id: string, nodeCount: number) {
  return {
    switchNetns: `bollard-${id}-sw`,
    hostIfname: `bl${id}`,
    hostNetns: [...Array.from({ length: nodeCount }, (_, i) => `bollard-${id}-node${i + 1}`), `bollard-${id}-client`],
  };
}

async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new LabSetupError(name, err);
  }
}

export async function createLabNetwork(opts: { id?: string; nodes?: number } = {}): Promise<LabNetwork> {
  const id = opts.id ?? newLabId();
  const nodeCount = opts.nodes ?? 2;
  if (nodeCount < 1 || nodeCount > 50) throw new LabSetupError("options", new Error(`--nodes must be 1..50, got ${nodeCount}`));
  const names = labResourceNames(id, nodeCount);
  // A /24 per lab, picked from the id so that two labs on one machine do not collide.
  const octet = Number.parseInt(id, 16) % 200 + 20;
  const prefixV4 = `10.251.${octet}`;
  const prefixV6 = `fd00:b011:${id}::`;
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
      await step(`create ${name}`, async () => {
        await ip(["netns", "add", netns]);
        await ip(["-n", netns, "link", "set", "lo", "up"]);
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
  };
}

/** Removes whatever exists of a lab's namespaces and host interface; never fails on what is already gone. */
export async function destroyLabNetwork(id: string, nodeCount: number): Promise<void> {
  const names = labResourceNames(id, nodeCount);
  await ip(["link", "del", names.hostIfname], { allowFailure: true });
  for (const ns of [...names.hostNetns, names.switchNetns]) {
    await ip(["netns", "del", ns], { allowFailure: true });
  }
}

/** Every lab namespace on this machine, whatever its id: for `bollard lab down --all`. */
export async function listLabNamespaces(): Promise<string[]> {
  const out = (await ip(["netns", "list"], { allowFailure: true })).stdout;
  return out
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => /^bollard-[0-9a-f]{4}-(sw|node\d+|client)$/.test(n));
}

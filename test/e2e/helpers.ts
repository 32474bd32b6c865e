// Small helpers shared by the end-to-end suites: polling, curl and arping from the client namespace, and an
// independent oracle for the L2 election (docs/architecture.md: candidates ordered by sha256(node + "#" + ip)).
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Lab } from "@bollard/lab";

export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

export async function serviceIPs(lab: Lab, namespace: string, name: string): Promise<string[]> {
  const res = await lab.kubectl(["get", "svc", "-n", namespace, name, "-o", "json"]);
  const svc = JSON.parse(res.stdout) as { status?: { loadBalancer?: { ingress?: { ip: string }[] } } };
  return (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
}

export async function waitForServiceIP(lab: Lab, namespace: string, name: string): Promise<string> {
  return eventually(`an address for Service ${namespace}/${name}`, async () => (await serviceIPs(lab, namespace, name))[0]);
}

export async function curl(lab: Lab, args: string[]): Promise<{ code: number; body: string }> {
  const res = await lab.execClient("curl", ["-sS", "--max-time", "5", ...args], { allowFailure: true, timeoutMs: 10_000 });
  return { code: res.code, body: res.stdout.trim() };
}

/** The MAC that answers ARP for `ip`, as the client sees it, or undefined when nobody answers. */
export async function arpingMAC(lab: Lab, ip: string): Promise<string | undefined> {
  // Debian's arping (Thomas Habets'): "60 bytes from aa:bb:cc:dd:ee:ff (10.0.0.1): index=0 time=…".
  const res = await lab.execClient("arping", ["-c", "1", "-w", "2", "-i", lab.network.client.ifname, ip], { allowFailure: true });
  return /bytes from ([0-9a-f]{2}(?::[0-9a-f]{2}){5})/i.exec(res.stdout)?.[1]?.toLowerCase();
}

export function electedNode(nodes: string[], ip: string): string | undefined {
  return [...nodes]
    .map((n) => ({ n, h: createHash("sha256").update(`${n}#${ip}`).digest() }))
    .sort((a, b) => Buffer.compare(a.h, b.h))[0]?.n;
}

export async function events(lab: Lab, namespace: string, kind: string, name: string): Promise<{ type: string; reason: string; message: string }[]> {
  const res = await lab.kubectl([
    "get", "events", "-n", namespace, "-o", "json",
    "--field-selector", `involvedObject.kind=${kind},involvedObject.name=${name}`,
  ]);
  const list = JSON.parse(res.stdout) as { items: { type: string; reason: string; message?: string; note?: string }[] };
  return list.items.map((e) => ({ type: e.type, reason: e.reason, message: e.message ?? e.note ?? "" }));
}

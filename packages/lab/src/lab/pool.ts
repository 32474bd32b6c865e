import { CONFIG_NAMESPACE } from "./lab.ts";

/** Which address families the lab's Services and pool use (every host has an IPv4 and an IPv6 address either way). */
export type LabIPFamily = "ipv4" | "ipv6" | "dual";

export const LAB_IP_FAMILIES: readonly LabIPFamily[] = ["ipv4", "ipv6", "dual"];

/**
 * The lab's MetalLB IPAddressPool — addresses .200–.220 of the lab's IPv4 /24 and ::200–::220 of its IPv6 /64, which
 * no lab host uses, as the family asks — and the L2Advertisement for it, as YAML for `kubectl apply -f -`.
 */
export function labPoolManifest(prefixV4: string, options: { ipFamily?: LabIPFamily; prefixV6?: string } = {}): string {
  const family = options.ipFamily ?? "ipv4";
  const addresses: string[] = [];
  if (family !== "ipv6") addresses.push(`${prefixV4}.200-${prefixV4}.220`);
  if (family !== "ipv4") {
    if (options.prefixV6 === undefined) throw new Error(`labPoolManifest: ipFamily ${family} needs prefixV6`);
    addresses.push(`${options.prefixV6}200-${options.prefixV6}220`);
  }
  return `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab-pool, namespace: ${CONFIG_NAMESPACE}}
spec:
  addresses: [${addresses.join(", ")}]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lab, namespace: ${CONFIG_NAMESPACE}}
spec:
  ipAddressPools: [lab-pool]
`;
}

import { CONFIG_NAMESPACE } from "./lab.ts";

/**
 * The lab's MetalLB IPAddressPool — addresses .200–.220 of the lab network, which no lab host uses — and the
 * L2Advertisement for it, as YAML for `kubectl apply -f -`.
 */
export function labPoolManifest(prefixV4: string): string {
  return `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab-pool, namespace: ${CONFIG_NAMESPACE}}
spec:
  addresses: [${prefixV4}.200-${prefixV4}.220]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lab, namespace: ${CONFIG_NAMESPACE}}
spec:
  ipAddressPools: [lab-pool]
`;
}

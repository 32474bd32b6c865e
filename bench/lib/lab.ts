// What the lab benchmarks share once their lab is up.
import type { Lab } from "@bollard/lab";
import { waitUntil } from "./proc.ts";

/** The address the controller gave the ingress's LoadBalancer Service, once it has one. */
export async function ingressAddress(lab: Lab, timeoutMs: number, everyMs: number): Promise<string> {
  let vip = "";
  await waitUntil(
    "an address for the ingress Service",
    async () => {
      const svc = JSON.parse((await lab.kubectl(["get", "svc", "-n", "metallb-system", "bollard-ingress", "-o", "json"])).stdout);
      vip = svc.status?.loadBalancer?.ingress?.[0]?.ip ?? "";
      return vip !== "";
    },
    timeoutMs,
    everyMs,
  );
  return vip;
}

// The kube-proxy stand-in's loop, run inside one node's network namespace: watch Services and EndpointSlices,
// and whenever the compiled rules change, replace the node's nft table in one transaction.
import { createBackoff, createInformer, createKubeConfig, type Logger, resources, typedResource, waitForSync } from "@bollard/core";
import { run } from "../network/exec.ts";
import { compileNatRules, type EndpointSliceLike, renderNftRuleset, type ServiceLike } from "./rules.ts";

export interface KubeProxyOptions {
  kubeconfig: string;
  nodeName: string;
  uplink: string;
  logger: Logger;
  signal: AbortSignal;
}

export async function runKubeProxy(opts: KubeProxyOptions): Promise<void> {
  const kubeConfig = createKubeConfig({ kubeconfig: opts.kubeconfig });
  const common = { kubeConfig, logger: opts.logger, signal: opts.signal };
  const services = createInformer({ ...common, resource: typedResource<ServiceLike>(resources.services) });
  const slices = createInformer({ ...common, resource: typedResource<EndpointSliceLike>(resources.endpointSlices) });
  await run("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
  await waitForSync(services, slices);
  let applied = "";
  let pending: NodeJS.Timeout | undefined;
  const backoff = createBackoff({ initialMs: 100, maxMs: 5000 });
  const sync = async () => {
    pending = undefined;
    const ruleset = renderNftRuleset(compileNatRules(services.list(), slices.list(), opts.nodeName), opts.uplink);
    if (ruleset === applied) return;
    try {
      await run("nft", ["-f", "-"], { input: ruleset });
      applied = ruleset;
      backoff.reset();
      opts.logger.info({ rules: ruleset.split("dnat").length - 1 }, "nat rules applied");
    } catch (err) {
      opts.logger.error({ err }, "applying nat rules failed");
      pending = setTimeout(() => void sync(), backoff.next());
    }
  };
  const schedule = () => {
    if (pending === undefined) pending = setTimeout(() => void sync(), 10);
  };
  services.onChange(schedule);
  slices.onChange(schedule);
  await sync();
  await new Promise<void>((resolve) => opts.signal.addEventListener("abort", () => resolve(), { once: true }));
  if (pending) clearTimeout(pending);
  services.stop();
  slices.stop();
}

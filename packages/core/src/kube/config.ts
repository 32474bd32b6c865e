import { delimiter } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";

export class KubeConfigError extends Error {
  override name = "KubeConfigError";
}

/**
 * The API client configuration: the `kubeconfig` file if given, else the file(s) in env
 * KUBECONFIG, else the pod's service account (in-cluster).
 */
export function createKubeConfig(options: { kubeconfig?: string } = {}): KubeConfig {
  const kubeConfig = new KubeConfig();
  const files = options.kubeconfig
    ? [options.kubeconfig]
    : (process.env.KUBECONFIG ?? "").split(delimiter).filter((file) => file !== "");
  if (files.length > 0) {
    const [first, ...rest] = files as [string, ...string[]];
    loadFile(kubeConfig, first);
    for (const file of rest) {
      const more = new KubeConfig();
      loadFile(more, file);
      try {
        kubeConfig.mergeConfig(more, true);
      } catch (error) {
        throw new KubeConfigError(`cannot merge kubeconfig ${file}: ${(error as Error).message}`, { cause: error });
      }
    }
  } else {
    if (!process.env.KUBERNETES_SERVICE_HOST || !process.env.KUBERNETES_SERVICE_PORT) {
      throw new KubeConfigError(
        "no kubeconfig given, KUBECONFIG unset, and not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)",
      );
    }
    kubeConfig.loadFromCluster();
  }
  if (!kubeConfig.getCurrentCluster()) {
    throw new KubeConfigError(`kubeconfig has no current cluster (context ${JSON.stringify(kubeConfig.currentContext)})`);
  }
  return kubeConfig;
}

function loadFile(kubeConfig: KubeConfig, file: string): void {
  try {
    kubeConfig.loadFromFile(file);
  } catch (error) {
    throw new KubeConfigError(`cannot load kubeconfig ${file}: ${(error as Error).message}`, { cause: error });
  }
}

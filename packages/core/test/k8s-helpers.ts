// Shared by the *.k8s.test.ts files: the API server is the real one test/run.ts started.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import { createKubeConfig, createLogger, kubeRequest, type Logger, resourcePath, resources, sleep } from "../src/index.ts";

export function testKubeConfig(): KubeConfig {
  const path = process.env.BOLLARD_KUBECONFIG;
  assert.ok(path, "BOLLARD_KUBECONFIG must be set: run through `node test/run.ts`");
  return createKubeConfig({ kubeconfig: path });
}

export const testLogger: Logger = createLogger({ name: "core-test", level: process.env.TEST_LOG_LEVEL ?? "silent" });

export async function createNamespace(kubeConfig: KubeConfig, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await kubeRequest(kubeConfig, { method: "POST", path: "/api/v1/namespaces", body: { metadata: { name } } });
  return name;
}

export async function deleteNamespace(kubeConfig: KubeConfig, name: string): Promise<void> {
  // No namespace controller runs in the test control plane; deletion only marks it.
  await kubeRequest(kubeConfig, { method: "DELETE", path: `/api/v1/namespaces/${name}` }).catch(() => {});
}

/**
 * Polls until `check` holds. The bound only keeps a broken test from hanging: it is far above
 * any expected latency and is not a timing assertion.
 */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, boundMs = 60_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(25);
  }
  assert.fail(`still not true after ${boundMs} ms: ${what}`);
}

export type ConfigMap = {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
};

export function configMaps(namespace: string) {
  return resourcePath(resources.configMaps, { namespace });
}

export async function putConfigMap(kubeConfig: KubeConfig, namespace: string, name: string, data: Record<string, string>, labels?: Record<string, string>): Promise<ConfigMap> {
  return kubeRequest<ConfigMap>(kubeConfig, {
    method: "POST",
    path: configMaps(namespace),
    body: { metadata: { name, ...(labels ? { labels } : {}) }, data },
  });
}

// Helpers for the controller's tests against the real API server started by test/run.ts.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { createKubeConfig, isStatus, kubeRequest } from "@bollard/core";
import type { KubeConfig } from "@kubernetes/client-node";

const bollard = join(import.meta.dirname, "..", "..", "cli", "bin", "bollard.ts");

export function kubeconfigPath(): string {
  const path = process.env.BOLLARD_KUBECONFIG;
  if (!path) throw new Error("BOLLARD_KUBECONFIG is not set: run these tests through test/run.ts, which starts the API server");
  return path;
}

export function kube(): KubeConfig {
  return createKubeConfig({ kubeconfig: kubeconfigPath() });
}

export const suffix = () => randomBytes(4).toString("hex");

export type ServiceJSON = {
  metadata: { name: string; namespace: string; uid: string; annotations?: Record<string, string> };
  spec: { type: string; loadBalancerClass?: string };
  status?: { loadBalancer?: { ingress?: { ip: string }[] } };
};

export type PoolJSON = {
  metadata: { name: string; namespace: string; uid: string; generation: number };
  spec: Record<string, unknown>;
  status?: {
    assignedIPv4?: number;
    assignedIPv6?: number;
    availableIPv4?: number;
    availableIPv6?: number;
    conditions?: { type: string; status: string; reason: string; message: string; observedGeneration?: number }[];
  };
};

export type EventJSON = { reason: string; type: string; note: string; regarding: { kind: string; name: string } };

/** A namespace for one test, with API helpers scoped to it. */
export async function testNamespace(config: KubeConfig, prefix: string) {
  const namespace = `${prefix}-${suffix()}`;
  await kubeRequest(config, { method: "POST", path: "/api/v1/namespaces", body: { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } } });
  const services = `/api/v1/namespaces/${namespace}/services`;
  const pools = `/apis/metallb.io/v1beta1/namespaces/${namespace}/ipaddresspools`;
  return {
    namespace,
    async createPool(name: string, spec: Record<string, unknown>): Promise<PoolJSON> {
      return kubeRequest(config, { method: "POST", path: pools, body: { apiVersion: "metallb.io/v1beta1", kind: "IPAddressPool", metadata: { name, namespace }, spec } });
    },
    async patchPool(name: string, spec: Record<string, unknown>): Promise<PoolJSON> {
      return kubeRequest(config, { method: "PATCH", path: `${pools}/${name}`, contentType: "application/merge-patch+json", body: { spec } });
    },
    async getPool(name: string): Promise<PoolJSON> {
      return kubeRequest(config, { path: `${pools}/${name}` });
    },
    async deletePool(name: string): Promise<void> {
      await kubeRequest(config, { method: "DELETE", path: `${pools}/${name}` });
    },
    async createService(
      name: string,
      options: { lbClass?: string; annotations?: Record<string, string>; ports?: { port: number; protocol?: string }[]; type?: string } = {},
    ): Promise<ServiceJSON> {
      return kubeRequest(config, {
        method: "POST",
        path: services,
        body: {
          apiVersion: "v1",
          kind: "Service",
          metadata: { name, namespace, annotations: options.annotations ?? {} },
          spec: {
            type: options.type ?? "LoadBalancer",
            ...(options.lbClass !== undefined ? { loadBalancerClass: options.lbClass } : {}),
            ports: options.ports ?? [{ port: 80 }],
            selector: { app: name },
          },
        },
      });
    },
    async patchService(name: string, patch: Record<string, unknown>): Promise<ServiceJSON> {
      return kubeRequest(config, { method: "PATCH", path: `${services}/${name}`, contentType: "application/merge-patch+json", body: patch });
    },
    async getService(name: string): Promise<ServiceJSON> {
      return kubeRequest(config, { path: `${services}/${name}` });
    },
    async listServices(): Promise<ServiceJSON[]> {
      return (await kubeRequest<{ items: ServiceJSON[] }>(config, { path: services })).items;
    },
    async deleteService(name: string): Promise<void> {
      await kubeRequest(config, { method: "DELETE", path: `${services}/${name}` });
    },
    async events(): Promise<EventJSON[]> {
      return (await kubeRequest<{ items: EventJSON[] }>(config, { path: `/apis/events.k8s.io/v1/namespaces/${namespace}/events` })).items;
    },
    async leaseHolder(name: string): Promise<string | undefined> {
      try {
        const lease = await kubeRequest<{ spec?: { holderIdentity?: string } }>(config, {
          path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`,
        });
        return lease.spec?.holderIdentity || undefined;
      } catch (error) {
        if (isStatus(error, 404)) return undefined;
        throw error;
      }
    },
    /**
     * Deletes the Services one by one (without a controller-manager nothing deletes a namespace's
     * contents, and the test API server's service CIDR is shared by every suite), then the namespace.
     */
    async delete(): Promise<void> {
      const items = (await kubeRequest<{ items: ServiceJSON[] }>(config, { path: services })).items;
      await Promise.all(items.map((service) => kubeRequest(config, { method: "DELETE", path: `${services}/${service.metadata.name}` }).catch(() => {})));
      await kubeRequest(config, { method: "DELETE", path: `/api/v1/namespaces/${namespace}` }).catch(() => {});
    },
  };
}

export type TestNamespace = Awaited<ReturnType<typeof testNamespace>>;

export const ips = (service: ServiceJSON): string[] => (service.status?.loadBalancer?.ingress ?? []).map((ingress) => ingress.ip);

/** Polls until `check` returns a value other than undefined; fails with `what` after the deadline. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
}

export type ControllerProcess = {
  identity: string;
  process: ChildProcess;
  /** JSON log lines so far. */
  logs: Record<string, unknown>[];
  metricsPort: Promise<number>;
  metrics(): Promise<string>;
  /** SIGTERM by PID and wait for the exit code. */
  stop(): Promise<number | null>;
};

/** Runs `bollard controller` as users run it, as a child process. */
export function startController(options: { namespace: string; lbClass?: string; identity?: string }): ControllerProcess {
  const identity = options.identity ?? `ctl-${suffix()}`;
  const args = [bollard, "controller", "--kubeconfig", kubeconfigPath(), "--config-namespace", options.namespace, "--metrics-port", "0", "--log-level", "debug"];
  if (options.lbClass !== undefined) args.push("--lb-class", options.lbClass);
  const child = spawn(process.execPath, args, { env: { ...process.env, POD_NAME: identity }, stdio: ["ignore", "pipe", "pipe"] });
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  let resolvePort!: (port: number) => void;
  const metricsPort = new Promise<number>((resolve) => {
    resolvePort = resolve;
  });
  let buffered = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      if (line.trim() === "") continue;
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === "health server listening" && typeof entry.port === "number") resolvePort(entry.port);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    identity,
    process: child,
    logs,
    metricsPort,
    async metrics() {
      const response = await fetch(`http://127.0.0.1:${await metricsPort}/metrics`);
      return response.text();
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, "SIGTERM");
      const code = await exited;
      if (code !== 0 && stderr !== "") process.stderr.write(`controller ${identity} stderr:\n${stderr}\n`);
      return code;
    },
  };
}

export function metricValue(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

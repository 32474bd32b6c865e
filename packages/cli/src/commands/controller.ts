// `bollard controller`: allocates addresses from IPAddressPools to LoadBalancer Services.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { runController } from "@bollard/controller";
import { createKubeConfig, createMetricsRegistry, KubeConfigError, onShutdown, startHealthServer } from "@bollard/core";
import { CliUsageError, type Command, createCommandLogger, parseFlags, parsePort } from "../command.ts";

const usage = `usage: bollard controller [flags]
  --kubeconfig FILE         API access (default: env KUBECONFIG, else in-cluster)
  --config-namespace NS     where IPAddressPools are read and the Lease is kept
                            (default: env POD_NAMESPACE, else the pod's own namespace)
  --lb-class CLASS          handle only Services with this spec.loadBalancerClass
                            (default: only Services without one)
  --log-level LEVEL         fatal|error|warn|info|debug|trace|silent (default: env LOG_LEVEL, else info)
  --metrics-port PORT       /metrics, /healthz, /readyz (default 7472; 0 picks a free port)`;

const SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

export const command: Command = async (argv) => {
  const { values } = parseFlags(argv, {
    kubeconfig: { type: "string" },
    "config-namespace": { type: "string" },
    "lb-class": { type: "string" },
    "log-level": { type: "string" },
    "metrics-port": { type: "string", default: "7472" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const metricsPort = parsePort("--metrics-port", values["metrics-port"]);
  if (values["lb-class"] === "") throw new CliUsageError("--lb-class must not be empty");
  const configNamespace = values["config-namespace"] ?? process.env.POD_NAMESPACE ?? ownNamespace();
  if (!configNamespace) {
    throw new CliUsageError("--config-namespace is required outside a cluster (no POD_NAMESPACE, no service account namespace)");
  }
  const logger = createCommandLogger("bollard-controller", values["log-level"]);
  let kubeConfig: ReturnType<typeof createKubeConfig>;
  try {
    kubeConfig = createKubeConfig({ kubeconfig: values.kubeconfig });
  } catch (error) {
    if (error instanceof KubeConfigError) throw new CliUsageError(error.message);
    throw error;
  }
  const shutdown = onShutdown((signal) => logger.info({ signal }, "stopping"));
  const identity = process.env.POD_NAME ?? `${hostname()}-${randomBytes(4).toString("hex")}`;
  const registry = createMetricsRegistry();
  const controller = runController({
    kubeConfig,
    configNamespace,
    lbClass: values["lb-class"],
    identity,
    logger,
    registry,
    signal: shutdown.signal,
  });
  const health = await startHealthServer({ port: metricsPort, registry, isReady: controller.isReady, logger });
  logger.info({ configNamespace, lbClass: values["lb-class"] ?? null, identity }, "controller started");
  await controller.done;
  await health.close();
  logger.info("stopped");
  return 0;
};

function ownNamespace(): string | undefined {
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

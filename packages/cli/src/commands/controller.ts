// `bollard controller`: allocates addresses from IPAddressPools to LoadBalancer Services.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { runController } from "@bollard/controller";
import { CliUsageError, type Command, parseFlags } from "../command.ts";
import { componentFlags, componentUsage, prepareComponent } from "../component.ts";

const METRICS_PORT = 7472;

const usage = `usage: bollard controller [flags]
  --config-namespace NS        where IPAddressPools are read and the Lease is kept
                               (default: env POD_NAMESPACE, else the pod's own namespace)
  --lb-class CLASS             handle only Services with this spec.loadBalancerClass
                               (default: only Services without one)
${componentUsage(METRICS_PORT, 31)}`;

const SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

export const command: Command = async (argv) => {
  const { values } = parseFlags(argv, {
    ...componentFlags(METRICS_PORT),
    "config-namespace": { type: "string" },
    "lb-class": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (values["lb-class"] === "") throw new CliUsageError("--lb-class must not be empty");
  const configNamespace = values["config-namespace"] ?? process.env.POD_NAMESPACE ?? ownNamespace();
  if (!configNamespace) {
    throw new CliUsageError("--config-namespace is required outside a cluster (no POD_NAMESPACE, no service account namespace)");
  }
  const { logger, start } = prepareComponent({ name: "bollard-controller", values });
  const identity = process.env.POD_NAME ?? `${hostname()}-${randomBytes(4).toString("hex")}`;
  return start(({ kubeConfig, registry, signal }) => {
    const controller = runController({ kubeConfig, configNamespace, lbClass: values["lb-class"], identity, logger, registry, signal });
    logger.info({ configNamespace, lbClass: values["lb-class"] ?? null, identity }, "controller started");
    return controller;
  });
};

function ownNamespace(): string | undefined {
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

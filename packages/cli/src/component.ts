// The one wiring of a long-running component (controller, speaker, ingress): the flags they share, the
// KubeConfig, the logger, the metrics registry, the /metrics /healthz /readyz server (plain HTTP, or HTTPS with
// TokenReview + SubjectAccessReview) and SIGTERM/SIGINT — built here the same way for all three.
import { readFileSync } from "node:fs";
import {
  type ComponentContext,
  createKubeConfig,
  createMetricsRegistry,
  createRequestAuthorizer,
  generateSelfSignedCertificate,
  KubeConfigError,
  type Logger,
  onShutdown,
  type PemPair,
  type RunningComponent,
  type SecureMetrics,
  startHealthServer,
} from "@bollard/core";
import { CliUsageError, createCommandLogger, parsePort } from "./command.ts";

/** The flags every component takes, for `parseFlags`; each command adds its own. */
export function componentFlags(defaultMetricsPort: number) {
  return {
    kubeconfig: { type: "string" },
    "log-level": { type: "string" },
    "metrics-port": { type: "string", default: String(defaultMetricsPort) },
    "metrics-secure": { type: "boolean", default: false },
    "metrics-tls-cert-file": { type: "string" },
    "metrics-tls-key-file": { type: "string" },
  } as const;
}

/** Their lines in each command's --help, aligned at `column`. */
export function componentUsage(defaultMetricsPort: number, column: number): string {
  const line = (flag: string, text: string) =>
    flag.length < column - 2 ? `  ${flag.padEnd(column - 2)}${text}` : `  ${flag}\n${" ".repeat(column)}${text}`;
  const more = (text: string) => `${" ".repeat(column)}${text}`;
  return [
    line("--kubeconfig FILE", "API access: this file, else env KUBECONFIG, else in-cluster (the pod's"),
    more("service account)"),
    line("--log-level LEVEL", "fatal|error|warn|info|debug|trace|silent (default: env LOG_LEVEL, else info)"),
    line("--metrics-port PORT", `/metrics, /healthz, /readyz (default ${defaultMetricsPort}; 0 picks a free port)`),
    line("--metrics-secure", "serve them over HTTPS; /metrics only to bearer tokens the API server"),
    more("authorises (TokenReview + SubjectAccessReview: get on /metrics)"),
    line("--metrics-tls-cert-file FILE", "with --metrics-tls-key-file: the HTTPS certificate (PEM); default"),
    more("a self-signed one made at start"),
  ].join("\n");
}

type ComponentFlagValues = {
  kubeconfig?: string | undefined;
  "log-level"?: string | undefined;
  "metrics-port"?: string | undefined;
  "metrics-secure"?: boolean | undefined;
  "metrics-tls-cert-file"?: string | undefined;
  "metrics-tls-key-file"?: string | undefined;
};

export type ComponentWiring = {
  /** The logger's name, e.g. bollard-controller. */
  name: string;
  values: ComponentFlagValues;
  /** Where the health server listens (default all addresses). */
  metricsHost?: string;
};

/** Checks the shared flags and builds what every component gets; usage errors are thrown before anything starts. */
export function prepareComponent(wiring: ComponentWiring): { logger: Logger; start: (run: (context: ComponentContext) => RunningComponent | Promise<RunningComponent>) => Promise<number> } {
  const { values } = wiring;
  const metricsPort = parsePort("--metrics-port", values["metrics-port"] ?? "0");
  const certificate = metricsCertificate(values);
  const logger = createCommandLogger(wiring.name, values["log-level"]);
  let kubeConfig: ReturnType<typeof createKubeConfig>;
  try {
    kubeConfig = createKubeConfig(values.kubeconfig === undefined ? {} : { kubeconfig: values.kubeconfig });
  } catch (error) {
    if (error instanceof KubeConfigError) throw new CliUsageError(error.message);
    throw error;
  }
  const start = async (run: (context: ComponentContext) => RunningComponent | Promise<RunningComponent>): Promise<number> => {
    const shutdown = onShutdown((signal) => logger.info({ signal }, "stopping"));
    const registry = createMetricsRegistry();
    let running: RunningComponent | undefined;
    const secure: SecureMetrics | undefined =
      certificate === undefined ? undefined : { certificate, authorize: createRequestAuthorizer({ kubeConfig }) };
    // Up before the component, so the kubelet's probes get an answer (503) while it starts.
    const health = await startHealthServer({
      port: metricsPort,
      ...(wiring.metricsHost === undefined ? {} : { host: wiring.metricsHost }),
      registry: { contentType: registry.contentType, metrics: () => (running?.metrics ?? registry).metrics() },
      isReady: () => running?.isReady() ?? false,
      logger,
      ...(secure === undefined ? {} : { secure }),
    });
    try {
      running = await run({ kubeConfig, registry, logger, signal: shutdown.signal });
      await running.done;
    } catch (err) {
      if (!shutdown.signal.aborted) {
        logger.fatal({ err }, "stopped by an error");
        await health.close();
        return 1;
      }
    }
    await health.close();
    logger.info("stopped");
    return 0;
  };
  return { logger, start };
}

function metricsCertificate(values: ComponentFlagValues): PemPair | undefined {
  const certFile = values["metrics-tls-cert-file"];
  const keyFile = values["metrics-tls-key-file"];
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new CliUsageError("--metrics-tls-cert-file and --metrics-tls-key-file go together");
  }
  if (!values["metrics-secure"]) {
    if (certFile !== undefined) throw new CliUsageError("--metrics-tls-cert-file needs --metrics-secure");
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined) return generateSelfSignedCertificate("Bollard metrics", ["localhost"]);
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch (error) {
      throw new CliUsageError(`${flag} ${file}: ${(error as Error).message}`);
    }
  };
  return { cert: read("--metrics-tls-cert-file", certFile), key: read("--metrics-tls-key-file", keyFile) };
}

import type { KubeConfig } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import type { MetricsSource } from "../health/server.ts";
import type { Logger } from "../log/logger.ts";

/**
 * What the `bollard` command hands each long-running component (controller, speaker, ingress), built the same way
 * for all three: the API client configuration, the registry /metrics serves, the logger, and the signal aborted on
 * SIGTERM/SIGINT.
 */
export type ComponentContext = { kubeConfig: KubeConfig; registry: Registry; logger: Logger; signal: AbortSignal };

/** A started component: readiness for /readyz, and `done`, settled once it has stopped after the signal. */
export type RunningComponent = {
  isReady(): boolean;
  done: Promise<void>;
  /** What /metrics serves when it is not the context's registry (the ingress adds its workers' metrics). */
  metrics?: MetricsSource;
};

// MetalLB v0.16's ConfigurationState (metallb.io/v1beta1): one status-only object per component — `controller`,
// and `speaker-<node>` per speaker — saying whether the configuration it reads is Valid or Invalid, and why.
// The writer keeps only the newest report and writes it when it differs from what was written last, so a
// component may report on every pass.
import type { KubeConfig } from "@kubernetes/client-node";
import { createWorkQueue } from "../lifecycle/work-queue.ts";
import type { Logger } from "../log/logger.ts";
import { isStatus, kubeRequest } from "./request.ts";
import { resourcePath, resources } from "./resources.ts";

export const COMPONENT_TYPE_LABEL = "metallb.io/component-type";
export const NODE_NAME_LABEL = "metallb.io/node-name";

export type ConfigurationResult = "Valid" | "Invalid" | "Unknown";

/** One reconciler's verdict, written as a metav1.Condition (`<type>`, True when valid). */
export type ConfigurationCondition = { type: string; valid: boolean; reason: string; message: string };

export type ConfigurationReport = { result: ConfigurationResult; errorSummary: string; conditions: ConfigurationCondition[] };

type Condition = { type: string; status: "True" | "False"; reason: string; message: string; lastTransitionTime: string };
type ConfigurationStateStatus = { result?: string; errorSummary?: string; conditions?: Condition[] };

export type ConfigurationStateWriterOptions = {
  kubeConfig: KubeConfig;
  namespace: string;
  /** `controller` or `speaker-<node>`, as MetalLB names them. */
  name: string;
  component: "controller" | "speaker";
  /** The speaker's node (label `metallb.io/node-name`). */
  nodeName?: string;
  logger: Logger;
  signal: AbortSignal;
};

export type ConfigurationStateWriter = {
  /** Replaces the pending report; written as soon as the previous write is over. */
  report(report: ConfigurationReport): void;
  /** Resolves when nothing is being written or waits to be (a report waiting out a failure's backoff does not count). */
  idle(): Promise<void>;
};

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

/** The `controller` / `speaker-<node>` ConfigurationState report for a list of problems of one reconciler. */
export function configurationReport(conditionType: string, problems: readonly string[]): ConfigurationReport {
  const valid = problems.length === 0;
  return {
    result: valid ? "Valid" : "Invalid",
    errorSummary: problems.join("; "),
    conditions: [{ type: conditionType, valid, reason: valid ? "Reconciled" : "ConfigError", message: problems.join("; ") }],
  };
}

export function createConfigurationStateWriter(options: ConfigurationStateWriterOptions): ConfigurationStateWriter {
  const { kubeConfig, namespace, name, logger, signal } = options;
  const path = resourcePath(resources.configurationStates, { namespace });
  const objectPath = resourcePath(resources.configurationStates, { namespace, name });
  const labels: Record<string, string> = { [COMPONENT_TYPE_LABEL]: options.component };
  if (options.nodeName !== undefined) labels[NODE_NAME_LABEL] = options.nodeName;
  let pending: ConfigurationReport | undefined;
  let written: ConfigurationStateStatus | undefined;

  /** The status to write, keeping lastTransitionTime of conditions whose status did not change. */
  function statusOf(report: ConfigurationReport, previous: ConfigurationStateStatus | undefined): ConfigurationStateStatus {
    const conditions = report.conditions.map((c): Condition => {
      const status = c.valid ? "True" : "False";
      const before = previous?.conditions?.find((p) => p.type === c.type);
      return { type: c.type, status, reason: c.reason, message: c.message, lastTransitionTime: before?.status === status ? before.lastTransitionTime : now() };
    });
    return { result: report.result, errorSummary: report.errorSummary, conditions };
  }

  const same = (a: ConfigurationStateStatus | undefined, b: ConfigurationStateStatus) =>
    a !== undefined && JSON.stringify({ ...a, conditions: a.conditions?.map(({ lastTransitionTime: _, ...c }) => c) }) ===
      JSON.stringify({ ...b, conditions: b.conditions?.map(({ lastTransitionTime: _, ...c }) => c) });

  async function ensureObject(): Promise<ConfigurationStateStatus | undefined> {
    try {
      const object = await kubeRequest<{ status?: ConfigurationStateStatus }>(kubeConfig, { path: objectPath, signal });
      return object.status;
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
    }
    try {
      await kubeRequest(kubeConfig, {
        method: "POST",
        path,
        body: { apiVersion: "metallb.io/v1beta1", kind: "ConfigurationState", metadata: { name, namespace, labels } },
        signal,
      });
    } catch (error) {
      if (!isStatus(error, 409)) throw error;
    }
    return undefined;
  }

  /** Writes the newest report; a report arriving meanwhile is written after, a failure retried with backoff. */
  async function writePending(): Promise<void> {
    const report = pending;
    if (report === undefined) return;
    try {
      const previous = written ?? (await ensureObject());
      const status = statusOf(report, previous);
      if (!same(previous, status)) {
        // A merge patch of the status subresource replaces `conditions` whole: only ours are in it.
        await kubeRequest(kubeConfig, { method: "PATCH", path: resourcePath(resources.configurationStates, { namespace, name, subresource: "status" }), contentType: "application/merge-patch+json", body: { status }, signal });
      }
      written = status;
      if (pending === report) pending = undefined;
    } catch (error) {
      // The object may have been deleted under us: look again on the next try.
      written = undefined;
      throw error;
    }
  }

  const queue = createWorkQueue<"write">({
    work: writePending,
    backoff: { initialMs: 200, maxMs: 10_000 },
    onError: (_key, error, retryInMs) => {
      if (!signal.aborted) logger.warn({ configurationState: `${namespace}/${name}`, err: error, retryInMs: Math.round(retryInMs) }, "writing ConfigurationState failed; retrying");
    },
    signal,
  });

  return {
    report(report) {
      pending = report;
      queue.add("write");
    },
    idle: () => queue.idle(),
  };
}

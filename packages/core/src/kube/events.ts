import { hostname } from "node:os";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.ts";
import { kubeRequest } from "./request.ts";

export type InvolvedObject = { kind: string; apiVersion: string; namespace?: string; name: string; uid?: string };

export type EventType = "Normal" | "Warning";

export type EventRecorderOptions = {
  kubeConfig: KubeConfig;
  /** reportingController, e.g. "bollard.io/controller". */
  component: string;
  /** reportingInstance (default: the host name). */
  host?: string;
  logger: Logger;
  /** Repeats of the same (object, type, reason, message) within this window update one Event (default 10 min). */
  seriesWindowMs?: number;
};

export type EventRecorder = {
  /** Fire-and-forget: never throws, failures are logged. */
  record(involvedObject: InvolvedObject, type: EventType, reason: string, message: string): void;
  /** Resolves when every write started so far has finished (for tests and shutdown). */
  flush(): Promise<void>;
};

type Series = {
  namespace: string;
  name: string;
  body: Record<string, unknown>;
  firstSeen: number;
  count: number;
  lastObserved: Date;
  created: boolean;
  dirty: boolean;
  writing: Promise<void> | undefined;
};

const MAX_NOTE = 1024;
const MAX_TRACKED = 4096;

function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Writes events.k8s.io/v1 Events. A repeat of an event still in its series window bumps
 * `series.count` on the existing Event instead of creating another, and writes for one series are
 * serialised, so a hot loop reporting the same problem costs at most one request in flight.
 */
export function createEventRecorder(options: EventRecorderOptions): EventRecorder {
  const { kubeConfig, component, logger } = options;
  const host = options.host ?? hostname();
  const windowMs = options.seriesWindowMs ?? 10 * 60_000;
  const series = new Map<string, Series>();

  function forget(now: number): void {
    for (const [key, entry] of series) {
      if (series.size <= MAX_TRACKED && now - entry.firstSeen < windowMs) break;
      if (!entry.writing) series.delete(key);
    }
  }

  async function write(entry: Series): Promise<void> {
    do {
      entry.dirty = false;
      const seriesField =
        entry.count > 1 ? { series: { count: entry.count, lastObservedTime: microTime(entry.lastObserved) } } : {};
      const path = `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(entry.namespace)}/events`;
      try {
        if (!entry.created) {
          await kubeRequest(kubeConfig, { method: "POST", path, body: { ...entry.body, ...seriesField } });
          entry.created = true;
        } else {
          await kubeRequest(kubeConfig, {
            method: "PATCH",
            path: `${path}/${encodeURIComponent(entry.name)}`,
            contentType: "application/merge-patch+json",
            body: seriesField,
          });
        }
      } catch (error) {
        logger.warn({ err: error, event: `${entry.namespace}/${entry.name}` }, "could not write event");
      }
    } while (entry.dirty);
    entry.writing = undefined;
  }

  return {
    record(involvedObject, type, reason, message) {
      try {
        const now = new Date();
        const key = JSON.stringify([
          involvedObject.apiVersion,
          involvedObject.kind,
          involvedObject.namespace ?? "",
          involvedObject.name,
          involvedObject.uid ?? "",
          type,
          reason,
          message,
        ]);
        let entry = series.get(key);
        if (entry && now.getTime() - entry.firstSeen < windowMs) {
          entry.count++;
          entry.lastObserved = now;
        } else {
          const namespace = involvedObject.namespace || "default";
          const name = `${involvedObject.name.slice(0, 200)}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, "0")}`;
          entry = {
            namespace,
            name,
            firstSeen: now.getTime(),
            count: 1,
            lastObserved: now,
            created: false,
            dirty: false,
            writing: undefined,
            body: {
              apiVersion: "events.k8s.io/v1",
              kind: "Event",
              metadata: { name, namespace },
              eventTime: microTime(now),
              reportingController: component,
              reportingInstance: host,
              action: reason,
              reason,
              type,
              note: message.length > MAX_NOTE ? `${message.slice(0, MAX_NOTE - 3)}...` : message,
              regarding: {
                kind: involvedObject.kind,
                apiVersion: involvedObject.apiVersion,
                name: involvedObject.name,
                ...(involvedObject.namespace ? { namespace: involvedObject.namespace } : {}),
                ...(involvedObject.uid ? { uid: involvedObject.uid } : {}),
              },
            },
          };
          series.delete(key);
          series.set(key, entry);
          forget(now.getTime());
        }
        logger.debug({ object: `${involvedObject.kind}/${involvedObject.namespace ?? ""}/${involvedObject.name}`, type, reason, count: entry.count }, message);
        if (entry.writing) entry.dirty = true;
        else entry.writing = write(entry);
      } catch (error) {
        logger.error({ err: error, reason }, "could not record event");
      }
    },
    async flush() {
      while (true) {
        const pending = [...series.values()].flatMap((entry) => (entry.writing ? [entry.writing] : []));
        if (pending.length === 0) return;
        await Promise.all(pending);
      }
    },
  };
}

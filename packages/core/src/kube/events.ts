import { hostname } from "node:os";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.ts";
import { kubeRequest } from "./request.ts";
import { resourcePath, resources } from "./resources.ts";

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
  /** Event writes per second, all objects together (default 10), with bursts of `burst` (default 50). */
  writesPerSecond?: number;
  burst?: number;
};

export type EventRecorder = {
  /** Fire-and-forget: never throws, failures are logged. */
  record(involvedObject: InvolvedObject, type: EventType, reason: string, message: string): void;
  /** Resolves when every queued write has finished, or after `timeoutMs` (default 5 s) at most (for tests and shutdown). */
  flush(timeoutMs?: number): Promise<void>;
};

type Series = {
  namespace: string;
  name: string;
  /** The involved object, for the per-object spam filter. */
  object: string;
  /** The Event to create; dropped once created (a series lives for its window: 1,000 of them held ~0.4 MiB). */
  body: Record<string, unknown> | undefined;
  firstSeen: number;
  count: number;
  lastObserved: Date;
  created: boolean;
  /** Observed again while its write was in flight: write once more after it. */
  dirty: boolean;
  writing: boolean;
};

const MAX_NOTE = 1024;
const MAX_TRACKED = 4096;
/** Series waiting for their first write; beyond this, new ones are dropped (and counted in a log line). */
const MAX_QUEUED = 1000;
/** Event writes in flight at once: Events never take more than these of the request connections. */
const MAX_IN_FLIGHT = 4;
/** Per involved object, as client-go's spam filter: a burst of 25 new Events, then one per 5 minutes. */
const OBJECT_BURST = 25;
const OBJECT_REFILL_MS = 5 * 60_000;

type Bucket = { tokens: number; at: number };

/** Takes a token if there is one; else says how long until there is. */
function takeToken(bucket: Bucket, capacity: number, refillMs: number, now: number): number {
  bucket.tokens = Math.min(capacity, bucket.tokens + (now - bucket.at) / refillMs);
  bucket.at = now;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return 0;
  }
  return Math.ceil((1 - bucket.tokens) * refillMs);
}

function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Writes events.k8s.io/v1 Events, as client-go's broadcaster does, so that Events can never crowd out the
 * writes that matter: a repeat of an event still in its series window bumps `series.count` on the existing
 * Event instead of creating another; writes go through one bounded queue, at most `MAX_IN_FLIGHT` at a time
 * and `writesPerSecond` on average; an object that produces more than `OBJECT_BURST` new Events is held to one
 * per 5 minutes; and when `MAX_QUEUED` series are waiting, new ones are dropped (logged) rather than queued.
 */
export function createEventRecorder(options: EventRecorderOptions): EventRecorder {
  const { kubeConfig, component, logger } = options;
  const host = options.host ?? hostname();
  const windowMs = options.seriesWindowMs ?? 10 * 60_000;
  const perSecond = options.writesPerSecond ?? 10;
  const burst = options.burst ?? 50;
  const series = new Map<string, Series>();
  const queue = new Set<Series>();
  const rate: Bucket = { tokens: burst, at: performance.now() };
  const perObject = new Map<string, Bucket>();
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  let dropped = 0;
  let idleWaiters: (() => void)[] = [];

  function forget(now: number): void {
    for (const [key, entry] of series) {
      if (series.size <= MAX_TRACKED && now - entry.firstSeen < windowMs) break;
      if (!entry.writing && !queue.has(entry)) series.delete(key);
    }
  }

  /** Whether the object may have another new Event (client-go's EventSourceObjectSpamFilter). */
  function objectAllows(object: string, now: number): boolean {
    let bucket = perObject.get(object);
    if (bucket === undefined) {
      if (perObject.size >= MAX_TRACKED) perObject.delete(perObject.keys().next().value as string);
      bucket = { tokens: OBJECT_BURST, at: now };
      perObject.set(object, bucket);
    }
    return takeToken(bucket, OBJECT_BURST, OBJECT_REFILL_MS, now) === 0;
  }

  function pump(): void {
    while (inFlight < MAX_IN_FLIGHT && queue.size > 0) {
      const wait = takeToken(rate, burst, 1000 / perSecond, performance.now());
      if (wait > 0) {
        if (timer === undefined) {
          timer = setTimeout(() => {
            timer = undefined;
            pump();
          }, wait);
          // Queued Events never keep a stopping process alive.
          timer.unref();
        }
        return;
      }
      const entry = queue.values().next().value as Series;
      queue.delete(entry);
      entry.writing = true;
      inFlight++;
      void write(entry).finally(() => {
        entry.writing = false;
        inFlight--;
        if (entry.dirty) queue.add(entry);
        pump();
        if (inFlight === 0 && queue.size === 0) {
          const waiters = idleWaiters;
          idleWaiters = [];
          for (const resolve of waiters) resolve();
        }
      });
    }
  }

  async function write(entry: Series): Promise<void> {
    entry.dirty = false;
    const seriesField = entry.count > 1 ? { series: { count: entry.count, lastObservedTime: microTime(entry.lastObserved) } } : {};
    const path = resourcePath(resources.events, { namespace: entry.namespace });
    try {
      if (!entry.created) {
        await kubeRequest(kubeConfig, { method: "POST", path, body: { ...entry.body, ...seriesField } });
        entry.created = true;
        entry.body = undefined;
      } else {
        await kubeRequest(kubeConfig, {
          method: "PATCH",
          path: resourcePath(resources.events, { namespace: entry.namespace, name: entry.name }),
          contentType: "application/merge-patch+json",
          body: seriesField,
        });
      }
    } catch (error) {
      logger.warn({ err: error, event: `${entry.namespace}/${entry.name}` }, "could not write event");
    }
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
        const object = `${involvedObject.kind}/${involvedObject.namespace ?? ""}/${involvedObject.name}`;
        let entry = series.get(key);
        if (entry && now.getTime() - entry.firstSeen < windowMs) {
          entry.count++;
          entry.lastObserved = now;
        } else {
          if (queue.size >= MAX_QUEUED || !objectAllows(object, performance.now())) {
            // Dropped, not queued: a flood of Events must not grow memory or delay the next writes.
            if (dropped++ % 1000 === 0) logger.warn({ object, reason, dropped }, "too many Events: dropping some");
            return;
          }
          const namespace = involvedObject.namespace || "default";
          const name = `${involvedObject.name.slice(0, 200)}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, "0")}`;
          entry = {
            namespace,
            name,
            object,
            firstSeen: now.getTime(),
            count: 1,
            lastObserved: now,
            created: false,
            dirty: false,
            writing: false,
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
        logger.debug({ object, type, reason, count: entry.count }, message);
        if (entry.writing) entry.dirty = true;
        else {
          queue.add(entry);
          pump();
        }
      } catch (error) {
        logger.error({ err: error, reason }, "could not record event");
      }
    },
    flush(timeoutMs = 5000) {
      if (inFlight === 0 && queue.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        // Bounded: a long queue (rate-limited) must not hold up a stopping component or a new term.
        const timeout = setTimeout(resolve, timeoutMs);
        timeout.unref();
        idleWaiters.push(() => {
          clearTimeout(timeout);
          resolve();
        });
      });
    },
  };
}

import type { KubeConfig } from "@kubernetes/client-node";
import { sleep } from "../lifecycle/backoff.ts";
import type { Logger } from "../log/logger.ts";
import { isStatus, kubeRequest } from "./request.ts";
import { resourcePath, resources } from "./resources.ts";

export type LeaderElectionOptions = {
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  /** Unique per candidate, usually the pod name. */
  identity: string;
  /** How long a lease holds without renewal before others may take it (default 15). */
  leaseDurationSeconds?: number;
  /** How long the leader keeps retrying a failed renewal before it steps down (default 10). */
  renewDeadlineSeconds?: number;
  /** Pause between attempts to acquire or renew (default 2). */
  retryPeriodSeconds?: number;
  logger: Logger;
  signal: AbortSignal;
  /**
   * Called on becoming leader. `leaderSignal` aborts when leadership ends; if a promise is
   * returned, a clean stop waits for it before releasing the lease, so two leaders never overlap.
   */
  onStartedLeading: (leaderSignal: AbortSignal) => void | Promise<void>;
  onStoppedLeading?: () => void;
};

export type LeaderElection = {
  isLeader(): boolean;
  /** Holder of the lease as last observed (possibly this candidate). */
  leader(): string | undefined;
  /** Resolves once stopped by the signal and the lease is released. */
  done: Promise<void>;
};

type Lease = {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
};

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Lease-based leader election, as client-go's leaderelection package does it: a candidate takes
 * the Lease when it is free or its holder has not renewed for leaseDurationSeconds (measured on
 * this candidate's own clock from when it last saw the Lease change, so clock skew between nodes
 * does not matter), every write carries the resourceVersion it read (optimistic concurrency), the
 * leader renews every retryPeriodSeconds and steps down if renewal keeps failing for
 * renewDeadlineSeconds. On a clean stop the leader clears holderIdentity so a successor need not
 * wait for expiry. After losing the lease the candidate competes again.
 */
export function runLeaderElection(options: LeaderElectionOptions): LeaderElection {
  const { kubeConfig, namespace, name, identity, signal } = options;
  const leaseDurationSeconds = options.leaseDurationSeconds ?? 15;
  const renewDeadlineMs = (options.renewDeadlineSeconds ?? 10) * 1000;
  const retryPeriodMs = (options.retryPeriodSeconds ?? 2) * 1000;
  if (!(leaseDurationSeconds * 1000 > renewDeadlineMs && renewDeadlineMs > retryPeriodMs && retryPeriodMs > 0)) {
    throw new RangeError(
      `leader election needs leaseDuration > renewDeadline > retryPeriod > 0, got ${leaseDurationSeconds}s/${renewDeadlineMs / 1000}s/${retryPeriodMs / 1000}s`,
    );
  }
  const logger = options.logger.child({ lease: `${namespace}/${name}`, identity });
  const path = resourcePath(resources.leases, { namespace });
  const leasePath = resourcePath(resources.leases, { namespace, name });

  let observed: Lease | undefined;
  let observedAt = 0; // our monotonic clock when `observed` last changed
  let leading = false;

  function observe(lease: Lease): void {
    const before = observed;
    if (
      !before ||
      before.metadata.resourceVersion !== lease.metadata.resourceVersion ||
      before.spec?.holderIdentity !== lease.spec?.holderIdentity
    ) {
      observedAt = performance.now();
    }
    observed = lease;
  }

  /** One attempt; true when this candidate holds the lease afterwards. */
  async function tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const now = new Date();
    let current: Lease;
    try {
      current = await kubeRequest<Lease>(kubeConfig, { path: leasePath, signal, timeoutMs, connection: "leases" });
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
      const created = await kubeRequest<Lease>(kubeConfig, {
        method: "POST",
        path,
        signal,
        timeoutMs,
        connection: "leases",
        body: {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        },
      }).catch((createError) => {
        if (isStatus(createError, 409)) return undefined; // another candidate created it first
        throw createError;
      });
      if (created) observe(created);
      return created !== undefined;
    }
    observe(current);
    const holder = current.spec?.holderIdentity ?? "";
    const duration = (current.spec?.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (holder !== "" && holder !== identity && performance.now() < observedAt + duration) return false;
    const spec = { ...current.spec, holderIdentity: identity, leaseDurationSeconds, renewTime: microTime(now) };
    if (holder !== identity) {
      spec.acquireTime = microTime(now);
      spec.leaseTransitions = (current.spec?.leaseTransitions ?? 0) + 1;
    }
    try {
      const updated = await kubeRequest<Lease>(kubeConfig, {
        method: "PUT",
        path: leasePath,
        signal,
        timeoutMs,
        connection: "leases",
        body: { ...current, spec },
      });
      observe(updated);
      return true;
    } catch (error) {
      if (isStatus(error, 409)) return false; // someone wrote in between; read again next round
      throw error;
    }
  }

  async function attempt(timeoutMs: number): Promise<boolean> {
    try {
      return await tryAcquireOrRenew(timeoutMs);
    } catch (error) {
      if (!signal.aborted) logger.warn({ err: error }, "lease request failed");
      return false;
    }
  }

  async function release(): Promise<void> {
    const lease = observed;
    if (!lease || lease.spec?.holderIdentity !== identity) return;
    try {
      await kubeRequest(kubeConfig, {
        method: "PUT",
        path: leasePath,
        timeoutMs: renewDeadlineMs,
        connection: "leases",
        body: {
          ...lease,
          spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(new Date()) },
        },
      });
      logger.info("released lease");
    } catch (error) {
      logger.warn({ err: error }, "could not release lease; successors wait for it to expire");
    }
  }

  /** Jitter keeps candidates that started together from hitting the server in lockstep. */
  const retryDelay = () => retryPeriodMs * (1 + Math.random() * 0.2);

  async function lead(): Promise<void> {
    const leaderController = new AbortController();
    leading = true;
    logger.info("became leader");
    let work: Promise<void> = Promise.resolve();
    try {
      work = Promise.resolve(options.onStartedLeading(leaderController.signal)).catch((error) =>
        logger.error({ err: error }, "onStartedLeading failed"),
      );
    } catch (error) {
      logger.error({ err: error }, "onStartedLeading failed");
    }
    let lastRenew = performance.now();
    while (!signal.aborted) {
      await sleep(retryPeriodMs, signal);
      if (signal.aborted) break;
      const remaining = renewDeadlineMs - (performance.now() - lastRenew);
      if (await attempt(Math.max(remaining, 1))) {
        lastRenew = performance.now();
        continue;
      }
      const takenOver = observed !== undefined && (observed.spec?.holderIdentity ?? "") !== identity;
      if (takenOver || performance.now() - lastRenew >= renewDeadlineMs) {
        logger.warn({ holder: observed?.spec?.holderIdentity, takenOver }, "lost leadership");
        break;
      }
    }
    leading = false;
    leaderController.abort();
    if (signal.aborted) {
      // Renewals have stopped, so after a lease duration others may take over anyway: waiting longer
      // for the leader's work gains nothing (and the release below then fails harmlessly on a conflict).
      const waited = new AbortController();
      const finished = await Promise.race([work.then(() => true), sleep(leaseDurationSeconds * 1000, waited.signal).then(() => false)]);
      waited.abort();
      if (!finished) logger.warn("leader work did not finish within a lease duration of being asked to stop");
      await release();
    }
    try {
      options.onStoppedLeading?.();
    } catch (error) {
      logger.error({ err: error }, "onStoppedLeading failed");
    }
  }

  async function run(): Promise<void> {
    while (!signal.aborted) {
      if (await attempt(renewDeadlineMs)) await lead();
      else await sleep(retryDelay(), signal);
    }
  }

  return {
    isLeader: () => leading,
    leader: () => observed?.spec?.holderIdentity || undefined,
    done: run(),
  };
}

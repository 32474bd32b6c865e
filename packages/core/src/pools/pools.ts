// IPAddressPool objects (plain JSON, as read from the API or from YAML) → validated pools. The one
// reading of pools: the controller allocates from it and the speaker's election finds an address's pool
// in it, so the two can never disagree about which pool holds an address.
import { AddressParseError, type IPAddress } from "../address/ip.ts";
import { type AddressRange, parseAddressRange, rangeContains } from "../address/range.ts";
import { type LabelSelector, parseLabelSelector } from "../labels/selector.ts";
import {
  AddressOverlapError,
  type ConfigError,
  DuplicatePoolError,
  InvalidAddressError,
  InvalidPoolFieldError,
  InvalidSelectorError,
} from "./errors.ts";

/** One entry of spec.addresses; `index` is its position there, for messages. */
export type PoolRange = AddressRange & { index: number };

export type ServiceAllocation = {
  /** Lower is tried first; undefined (or 0, as in MetalLB) comes after every pool that sets one. */
  priority: number | undefined;
  namespaces: string[];
  namespaceSelectors: LabelSelector[];
  serviceSelectors: LabelSelector[];
};

export type Pool = {
  name: string;
  namespace: string;
  /** metadata.labels, which L2Advertisements' ipAddressPoolSelectors match. */
  labels: Record<string, string>;
  /** In spec order, which is the order addresses are handed out in. */
  ranges: PoolRange[];
  autoAssign: boolean;
  avoidBuggyIPs: boolean;
  serviceAllocation: ServiceAllocation | undefined;
};

export type PoolsResult = { pools: Pool[] } | { errors: ConfigError[] };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Validates every pool and checks that no two address entries overlap, within a pool or across
 * pools. Either all pools are valid, or every problem found is returned.
 */
export function loadPools(objects: readonly unknown[]): PoolsResult {
  const errors: ConfigError[] = [];
  const pools: Pool[] = [];
  const byName = new Map<string, Pool>();
  objects.forEach((object, i) => {
    const metadata = isRecord(object) && isRecord(object.metadata) ? object.metadata : {};
    const name = typeof metadata.name === "string" ? metadata.name : `#${i}`;
    const namespace = typeof metadata.namespace === "string" ? metadata.namespace : "";
    const labels = isRecord(metadata.labels) ? stringValues(metadata.labels) : {};
    const pool = parsePool(name, namespace, labels, isRecord(object) ? object.spec : undefined, errors);
    const previous = byName.get(name);
    if (previous !== undefined) {
      errors.push(new DuplicatePoolError(name, namespace, previous.namespace));
      return;
    }
    if (pool !== undefined) {
      byName.set(name, pool);
      pools.push(pool);
    }
  });
  errors.push(...findOverlaps(pools));
  return errors.length > 0 ? { errors } : { pools };
}

/** The pool holding an address; loaded pools never overlap, so there is at most one. */
export function poolContaining(pools: readonly Pool[], address: IPAddress): Pool | undefined {
  return pools.find((pool) => pool.ranges.some((range) => rangeContains(range, address)));
}

function stringValues(record: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).filter((entry): entry is [string, string] => typeof entry[1] === "string"));
}

function parsePool(name: string, namespace: string, labels: Record<string, string>, spec: unknown, errors: ConfigError[]): Pool | undefined {
  const before = errors.length;
  const fieldError = (field: string, reason: string) => errors.push(new InvalidPoolFieldError(name, namespace, field, reason));
  if (!isRecord(spec)) {
    fieldError("spec", "missing or not an object");
    return undefined;
  }
  const ranges: PoolRange[] = [];
  if (!Array.isArray(spec.addresses) || spec.addresses.length === 0) {
    fieldError("spec.addresses", "a non-empty list of CIDRs or a-b ranges is required");
  } else {
    spec.addresses.forEach((text: unknown, index: number) => {
      const field = `spec.addresses[${index}]`;
      if (typeof text !== "string") {
        fieldError(field, `${JSON.stringify(text)} is not a string`);
        return;
      }
      try {
        ranges.push({ ...parseAddressRange(text), index });
      } catch (error) {
        if (!(error instanceof AddressParseError)) throw error;
        errors.push(new InvalidAddressError(name, namespace, field, text, error.reason));
      }
    });
  }
  const autoAssign = optionalBoolean(spec.autoAssign, true, "spec.autoAssign", fieldError);
  const avoidBuggyIPs = optionalBoolean(spec.avoidBuggyIPs, false, "spec.avoidBuggyIPs", fieldError);
  const serviceAllocation = parseServiceAllocation(name, namespace, spec.serviceAllocation, errors);
  if (errors.length > before) return undefined;
  return { name, namespace, labels, ranges, autoAssign, avoidBuggyIPs, serviceAllocation };
}

function optionalBoolean(value: unknown, fallback: boolean, field: string, fieldError: (field: string, reason: string) => void): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "boolean") {
    fieldError(field, `${JSON.stringify(value)} is not true or false`);
    return fallback;
  }
  return value;
}

function parseServiceAllocation(name: string, namespace: string, raw: unknown, errors: ConfigError[]): ServiceAllocation | undefined {
  if (raw === undefined || raw === null) return undefined;
  const fieldError = (field: string, reason: string) => errors.push(new InvalidPoolFieldError(name, namespace, field, reason));
  if (!isRecord(raw)) {
    fieldError("spec.serviceAllocation", "not an object");
    return undefined;
  }
  let priority: number | undefined;
  if (raw.priority !== undefined && raw.priority !== null) {
    if (typeof raw.priority !== "number" || !Number.isSafeInteger(raw.priority) || raw.priority < 0) {
      fieldError("spec.serviceAllocation.priority", `${JSON.stringify(raw.priority)} is not a non-negative integer`);
    } else if (raw.priority > 0) {
      priority = raw.priority;
    }
  }
  const namespaces: string[] = [];
  if (raw.namespaces !== undefined && raw.namespaces !== null) {
    if (!Array.isArray(raw.namespaces)) fieldError("spec.serviceAllocation.namespaces", "not a list of namespace names");
    else {
      raw.namespaces.forEach((ns: unknown, i: number) => {
        if (typeof ns !== "string" || ns === "") fieldError(`spec.serviceAllocation.namespaces[${i}]`, `${JSON.stringify(ns)} is not a namespace name`);
        else namespaces.push(ns);
      });
    }
  }
  const selectors = (key: "namespaceSelectors" | "serviceSelectors"): LabelSelector[] => {
    const list = raw[key];
    if (list === undefined || list === null) return [];
    const field = `spec.serviceAllocation.${key}`;
    if (!Array.isArray(list)) {
      fieldError(field, "not a list of label selectors");
      return [];
    }
    const parsed: LabelSelector[] = [];
    list.forEach((item: unknown, i: number) => {
      const result = parseLabelSelector(item);
      if ("selector" in result) parsed.push(result.selector);
      else {
        for (const problem of result.problems) {
          const path = problem.path === "" ? `${field}[${i}]` : `${field}[${i}].${problem.path}`;
          errors.push(new InvalidSelectorError(name, namespace, path, problem.message));
        }
      }
    });
    return parsed;
  };
  return {
    priority,
    namespaces,
    namespaceSelectors: selectors("namespaceSelectors"),
    serviceSelectors: selectors("serviceSelectors"),
  };
}

type RangeOwner = { pool: Pool; order: number; range: PoolRange };

/** Sweeps all ranges sorted by start; each range that overlaps an earlier-starting one is reported. */
function findOverlaps(pools: Pool[]): AddressOverlapError[] {
  const entries: RangeOwner[] = pools.flatMap((pool, order) => pool.ranges.map((range) => ({ pool, order, range })));
  entries.sort((a, b) => a.range.family - b.range.family || (a.range.first < b.range.first ? -1 : a.range.first > b.range.first ? 1 : 0));
  const errors: AddressOverlapError[] = [];
  let reach: RangeOwner | undefined;
  for (const entry of entries) {
    if (reach !== undefined && reach.range.family === entry.range.family && entry.range.first <= reach.range.last) {
      // Name the pair in input order, so the message reads the way the manifests do.
      const [a, b] = inputOrder(reach, entry) < 0 ? [reach, entry] : [entry, reach];
      errors.push(
        new AddressOverlapError(
          { name: a.pool.name, namespace: a.pool.namespace, field: `spec.addresses[${a.range.index}]`, input: a.range.source },
          { name: b.pool.name, field: `spec.addresses[${b.range.index}]`, input: b.range.source },
        ),
      );
    }
    if (reach === undefined || reach.range.family !== entry.range.family || entry.range.last > reach.range.last) reach = entry;
  }
  return errors;
}

function inputOrder(a: RangeOwner, b: RangeOwner): number {
  return a.order - b.order || a.range.index - b.range.index;
}

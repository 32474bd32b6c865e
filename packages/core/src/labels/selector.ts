// Kubernetes label selectors (metav1.LabelSelector) as plain data: validated once when the object
// holding them (an IPAddressPool, an L2Advertisement) is read, then matched against label maps.

export type Labels = Readonly<Record<string, string>>;

export type SelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist";

export type SelectorRequirement = { key: string; operator: SelectorOperator; values: string[] };

/** A validated selector; empty (no labels, no expressions) matches everything, as in Kubernetes. */
export type LabelSelector = { matchLabels: Record<string, string>; matchExpressions: SelectorRequirement[] };

/** Why a selector is refused; `path` is relative to the selector (e.g. `matchExpressions[0].values`). */
export type SelectorProblem = { path: string; message: string };

const OPERATORS: readonly string[] = ["In", "NotIn", "Exists", "DoesNotExist"];
const NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `label key ${JSON.stringify(key)} has an invalid prefix (a DNS subdomain is expected)`;
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name)) {
    return `label key ${JSON.stringify(key)} is invalid (at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric)`;
  }
  return undefined;
}

function labelValueProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return `label value ${JSON.stringify(value)} is not a string`;
  if (value === "") return undefined;
  if (value.length > 63 || !NAME.test(value)) {
    return `label value ${JSON.stringify(value)} is invalid (at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric)`;
  }
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Validates a selector as written in a manifest; returns the selector or every problem found. */
export function parseLabelSelector(raw: unknown): { selector: LabelSelector } | { problems: SelectorProblem[] } {
  const problems: SelectorProblem[] = [];
  if (!isRecord(raw)) return { problems: [{ path: "", message: "a selector is an object with matchLabels and/or matchExpressions" }] };
  const matchLabels: Record<string, string> = {};
  if (raw.matchLabels !== undefined && raw.matchLabels !== null) {
    if (!isRecord(raw.matchLabels)) {
      problems.push({ path: "matchLabels", message: "matchLabels is a map of label keys to values" });
    } else {
      for (const [key, value] of Object.entries(raw.matchLabels)) {
        const problem = labelKeyProblem(key) ?? labelValueProblem(value);
        if (problem !== undefined) problems.push({ path: `matchLabels[${JSON.stringify(key)}]`, message: problem });
        else matchLabels[key] = value as string;
      }
    }
  }
  const matchExpressions: SelectorRequirement[] = [];
  if (raw.matchExpressions !== undefined && raw.matchExpressions !== null) {
    if (!Array.isArray(raw.matchExpressions)) {
      problems.push({ path: "matchExpressions", message: "matchExpressions is a list" });
    } else {
      raw.matchExpressions.forEach((expression: unknown, i: number) => {
        const path = `matchExpressions[${i}]`;
        const parsed = parseRequirement(expression);
        if ("problem" in parsed) problems.push({ path: `${path}${parsed.problem.path}`, message: parsed.problem.message });
        else matchExpressions.push(parsed.requirement);
      });
    }
  }
  for (const key of Object.keys(raw)) {
    if (key !== "matchLabels" && key !== "matchExpressions") {
      problems.push({ path: key, message: `unknown selector field ${JSON.stringify(key)}` });
    }
  }
  return problems.length > 0 ? { problems } : { selector: { matchLabels, matchExpressions } };
}

function parseRequirement(raw: unknown): { requirement: SelectorRequirement } | { problem: SelectorProblem } {
  if (!isRecord(raw)) return { problem: { path: "", message: "an expression is an object with key, operator and values" } };
  const { key, operator, values } = raw;
  if (typeof key !== "string") return { problem: { path: ".key", message: "key is required" } };
  const keyProblem = labelKeyProblem(key);
  if (keyProblem !== undefined) return { problem: { path: ".key", message: keyProblem } };
  if (typeof operator !== "string" || !OPERATORS.includes(operator)) {
    return { problem: { path: ".operator", message: `operator ${JSON.stringify(operator)} is not one of In, NotIn, Exists, DoesNotExist` } };
  }
  const list = values === undefined || values === null ? [] : values;
  if (!Array.isArray(list)) return { problem: { path: ".values", message: "values is a list of strings" } };
  for (const [i, value] of list.entries()) {
    const problem = labelValueProblem(value);
    if (problem !== undefined) return { problem: { path: `.values[${i}]`, message: problem } };
  }
  if ((operator === "In" || operator === "NotIn") && list.length === 0) {
    return { problem: { path: ".values", message: `operator ${operator} needs at least one value` } };
  }
  if ((operator === "Exists" || operator === "DoesNotExist") && list.length > 0) {
    return { problem: { path: ".values", message: `operator ${operator} takes no values` } };
  }
  return { requirement: { key, operator: operator as SelectorOperator, values: list as string[] } };
}

export function selectorMatches(selector: LabelSelector, labels: Labels): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels)) {
    if (labels[key] !== value) return false;
  }
  for (const { key, operator, values } of selector.matchExpressions) {
    const has = Object.hasOwn(labels, key);
    const value = labels[key];
    switch (operator) {
      case "In":
        if (!has || !values.includes(value as string)) return false;
        break;
      case "NotIn":
        if (has && values.includes(value as string)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}

import type { LabelSelector } from "./objects.ts";

/** A selector that cannot be evaluated; names the offending operator. */
export class LabelSelectorError extends Error {
  override name = "LabelSelectorError";
  readonly operator: string;
  constructor(operator: string) {
    super(`label selector operator ${JSON.stringify(operator)} is not one of In, NotIn, Exists, DoesNotExist`);
    this.operator = operator;
  }
}

/** Kubernetes LabelSelector semantics: every term must hold; an empty selector matches all. */
export function matchesLabelSelector(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (have[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, key);
    switch (operator) {
      case "In":
        if (!present || !values.includes(have[key] as string)) return false;
        break;
      case "NotIn":
        if (present && values.includes(have[key] as string)) return false;
        break;
      case "Exists":
        if (!present) return false;
        break;
      case "DoesNotExist":
        if (present) return false;
        break;
      default:
        throw new LabelSelectorError(operator);
    }
  }
  return true;
}

// The node flags the Helm chart starts the controller and the speaker with (`bollard.lowMemoryCommand` in
// deploy/helm/bollard/templates/_helpers.tpl), so that a bench measures those processes as users run them.
import { readFileSync } from "node:fs";
import { join } from "node:path";

const helpers = join(import.meta.dirname, "..", "..", "deploy", "helm", "bollard", "templates", "_helpers.tpl");

export function chartNodeFlags(): string[] {
  const text = readFileSync(helpers, "utf8");
  const body = /\{\{-? define "bollard\.lowMemoryCommand" -?\}\}([\s\S]*?)\{\{-? end -?\}\}/.exec(text)?.[1];
  if (body === undefined) throw new Error(`${helpers}: no "bollard.lowMemoryCommand" template`);
  const flags = body
    .split("\n")
    .map((line) => line.trim().replace(/^- /, ""))
    .filter((word) => word.startsWith("--"));
  if (flags.length === 0) throw new Error(`${helpers}: "bollard.lowMemoryCommand" has no node flags`);
  return flags;
}

// Shared by the packaging tests: the helm binary (installed into the per-user cache on first use), rendering
// the chart, and reading rendered manifests as plain objects.
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const chartDir = join(root, "deploy/helm/bollard");

export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
};

export type PolicyRule = {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
};

export class CommandError extends Error {
  override name = "CommandError";
  readonly command: string;
  readonly status: number | null;
  readonly stderr: string;
  constructor(command: string, status: number | null, stderr: string) {
    super(`${command} exited ${status}: ${stderr.trim()}`);
    this.command = command;
    this.status = status;
    this.stderr = stderr;
  }
}

/** Runs a command and returns its stdout; a non-zero exit throws CommandError carrying stderr. */
export function run(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  try {
    return execFileSync(command, args, {
      cwd: root,
      input: options.input,
      env: options.env ?? process.env,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { status: number | null; stderr?: string; stdout?: string };
    throw new CommandError(`${command} ${args.join(" ")}`, e.status, `${e.stderr ?? ""}${e.stdout ?? ""}`);
  }
}

let helmPath: string | undefined;

/** The pinned helm, built from the Go module proxy by test/harness/install-helm.sh unless cached. */
export function helm(): string {
  if (helmPath === undefined) {
    run("bash", [join(root, "test/harness/install-helm.sh")]);
    helmPath = run("bash", [join(root, "test/harness/install-helm.sh"), "--print-path"]).trim();
  }
  return helmPath;
}

/** `helm template` of the chart with `--set` values, as YAML text. */
export function template(options: { release?: string; namespace?: string; set?: string[]; includeCrds?: boolean } = {}): string {
  const args = ["template", options.release ?? "bollard", chartDir, "--namespace", options.namespace ?? "metallb-system"];
  if (options.includeCrds) args.push("--include-crds");
  for (const value of options.set ?? []) args.push("--set", value);
  return run(helm(), args);
}

export function parseManifests(text: string): Manifest[] {
  return YAML.parseAllDocuments(text)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null && typeof m === "object");
}

export function find(manifests: Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (found === undefined) {
    const have = manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(", ");
    throw new Error(`no ${kind}/${name} in the rendered chart (have: ${have})`);
  }
  return found;
}

/** Every RBAC rule granted to a ServiceAccount by the rendered (Cluster)Role(Binding)s, with where it applies. */
export function rulesOf(manifests: Manifest[], serviceAccount: string): { scope: string; rule: PolicyRule }[] {
  const rules: { scope: string; rule: PolicyRule }[] = [];
  for (const binding of manifests.filter((m) => m.kind === "RoleBinding" || m.kind === "ClusterRoleBinding")) {
    const subjects = (binding.subjects ?? []) as { kind: string; name: string }[];
    if (!subjects.some((s) => s.kind === "ServiceAccount" && s.name === serviceAccount)) continue;
    const ref = binding.roleRef as { kind: string; name: string };
    const role = manifests.find(
      (m) =>
        m.kind === ref.kind &&
        m.metadata.name === ref.name &&
        (ref.kind === "ClusterRole" || m.metadata.namespace === binding.metadata.namespace),
    );
    if (role === undefined) throw new Error(`${binding.kind} ${binding.metadata.name} refers to a missing ${ref.kind} ${ref.name}`);
    const scope = binding.kind === "ClusterRoleBinding" ? "cluster" : `namespace ${binding.metadata.namespace}`;
    for (const rule of (role.rules ?? []) as PolicyRule[]) rules.push({ scope, rule });
  }
  return rules;
}

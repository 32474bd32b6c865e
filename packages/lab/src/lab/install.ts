// Installs Bollard into the lab as a user would — `kubectl apply` of the rendered manifest and the membership
// Secret its header asks for — and reads back what the kubelet would use to run each workload: its container
// arguments and a token of its ServiceAccount. The lab then runs each component with exactly that, so the
// chart's RBAC is what the whole story runs on.
import { randomBytes } from "node:crypto";
import { chmod, readFile } from "node:fs/promises";
import { join } from "node:path";
import YAML from "yaml";
import type { ControlPlane } from "../control-plane/control-plane.ts";
import type { RunResult } from "../network/exec.ts";
import type { ContainerSecurity } from "./containers.ts";

export const INSTALL_NAMESPACE = "metallb-system";
export const MEMBERSHIP_SECRET = "bollard-membership";

export interface Workload {
  kind: "Deployment" | "DaemonSet";
  name: string;
  serviceAccount: string;
  /** Container args with `$(VAR)` references left for the caller to expand, as the kubelet does. */
  args: string[];
  /**
   * The container's command when it names one (the image's entrypoint otherwise): the chart's is
   * `[node, <node flags>…, bollard.js]`, the flags what the lab's own processes get too.
   */
  command: string[] | undefined;
  nodeFlags: string[];
  podLabels: Record<string, string>;
  /** The container's env entries with a plain `value` (the downward API's are the lab's to fill in). */
  env: Record<string, string>;
  /** The container's image and security context, for `--runtime podman`. */
  image: string;
  security: ContainerSecurity;
}

export interface Installation {
  controller: Workload;
  speaker: Workload;
  ingress: Workload;
  /** A kubeconfig per ServiceAccount, authenticating with its token; readable by the non-root speaker. */
  kubeconfigs: Record<string, string>;
  /** Each ServiceAccount's token (TokenRequest), for the pods' mounted ServiceAccount volume. */
  tokens: Record<string, string>;
}

type Manifest = {
  kind: string;
  metadata: { name: string };
  spec?: { template?: { metadata?: { labels?: Record<string, string> }; spec?: { serviceAccountName?: string; containers?: { command?: string[]; args?: string[]; env?: { name: string; value?: string }[]; image?: string; securityContext?: ContainerSecurity }[] } } };
};

export async function installBollard(opts: {
  manifestPath: string;
  controlPlane: ControlPlane;
  kubectl: (args: string[], input?: string) => Promise<RunResult>;
  dir: string;
}): Promise<Installation> {
  await opts.kubectl(["apply", "--server-side", "-f", opts.manifestPath]);
  await opts.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
  await opts.kubectl([
    "create", "secret", "generic", MEMBERSHIP_SECRET, "-n", INSTALL_NAMESPACE,
    `--from-literal=secretkey=${randomBytes(48).toString("base64")}`,
  ]);
  const docs = YAML.parseAllDocuments(await readFile(opts.manifestPath, "utf8"))
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null);
  const workload = (kind: Workload["kind"], name: string): Workload => {
    const doc = docs.find((d) => d.kind === kind && d.metadata.name === name);
    const template = doc?.spec?.template;
    const container = template?.spec?.containers?.[0];
    const args = container?.args;
    const serviceAccount = template?.spec?.serviceAccountName;
    if (!args || !serviceAccount || !container?.image) {
      throw new Error(`${opts.manifestPath} has no ${kind} ${name} with an image, args and a serviceAccountName`);
    }
    const command = container.command;
    if (command !== undefined && (command.length < 2 || !command[0]?.endsWith("/node") || !command.at(-1)?.endsWith("/bollard.js"))) {
      throw new Error(`${opts.manifestPath}: ${kind} ${name}'s command is not [node, node flags…, bollard.js]: ${JSON.stringify(command)}`);
    }
    return {
      kind,
      name,
      serviceAccount,
      args,
      command,
      nodeFlags: command?.slice(1, -1) ?? [],
      podLabels: template?.metadata?.labels ?? {},
      env: Object.fromEntries((container.env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]]))),
      image: container.image,
      security: container.securityContext ?? {},
    };
  };
  const installation: Installation = {
    controller: workload("Deployment", "bollard-controller"),
    speaker: workload("DaemonSet", "bollard-speaker"),
    ingress: workload("Deployment", "bollard-ingress"),
    kubeconfigs: {},
    tokens: {},
  };
  for (const w of [installation.controller, installation.speaker, installation.ingress]) {
    const token = (await opts.kubectl(["create", "token", w.serviceAccount, "-n", INSTALL_NAMESPACE, "--duration=48h"])).stdout.trim();
    const path = join(opts.dir, `kubeconfig-${w.serviceAccount}`);
    await opts.controlPlane.writeTokenKubeconfig(path, token);
    await chmod(path, 0o644);
    installation.kubeconfigs[w.serviceAccount] = path;
    installation.tokens[w.serviceAccount] = token;
  }
  return installation;
}

/** `$(VAR)` references expanded from `env`, as the kubelet expands container args. */
export function expandArgs(args: string[], env: Record<string, string>): string[] {
  return args.map((a) => a.replace(/\$\((\w+)\)/g, (_, v: string) => env[v] ?? ""));
}

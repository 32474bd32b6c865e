// Shared by the annotation tests: an Ingress's annotations (and the objects they name) in, policy out.
import { DEFAULT_GLOBALS, type GlobalSettings } from "../../src/annotations/globals.ts";
import { POLICY_READERS } from "../../src/annotations/index.ts";
import { NGINX_ANNOTATION_PREFIX, readPolicy } from "../../src/annotations/read.ts";
import type { ConfigMap, Secret } from "../../src/model/objects.ts";

export interface PolicyCaseContext {
  namespace?: string;
  secrets?: Secret[];
  configMaps?: ConfigMap[];
  globals?: GlobalSettings;
  prefix?: string;
  /** every rule of the Ingress names an exact host (default false) */
  fixedHosts?: boolean;
}

/** The policy and findings of an Ingress with these annotations, read by every reader. */
export function policyOf(annotations: Record<string, string>, context: PolicyCaseContext = {}) {
  const namespace = context.namespace ?? "default";
  const find = <T extends { metadata: { name: string; namespace?: string } }>(list: T[] | undefined, ref: string) => {
    const [ns, name] = ref.includes("/") ? ref.split("/", 2) : [namespace, ref];
    return list?.find((o) => o.metadata.name === name && (o.metadata.namespace ?? "default") === ns);
  };
  return readPolicy(
    annotations,
    {
      namespace,
      globals: context.globals ?? DEFAULT_GLOBALS,
      fixedHosts: context.fixedHosts ?? false,
      secret: (ref) => find(context.secrets, ref),
      configMap: (ref) => find(context.configMaps, ref),
    },
    POLICY_READERS,
    context.prefix ?? NGINX_ANNOTATION_PREFIX,
  );
}

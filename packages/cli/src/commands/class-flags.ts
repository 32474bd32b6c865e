// The flags that choose which Ingresses are served and how their annotations are read, shared by
// `bollard ingress` (live) and the offline commands (`explain route`, `migrate`), which take the same words.
import {
  type CompileOptions,
  CONTROLLER_NAME,
  DEFAULT_CLASS_NAME,
  type GlobalFinding,
  NGINX_ANNOTATION_PREFIX,
  ObjectRefError,
  parseObjectRef,
  readGlobals,
  refKey,
  type Snapshot,
} from "@bollard/ingress";
import { CliUsageError } from "../command.ts";

export const classFlags = {
  "ingress-class": { type: "string" as const, default: DEFAULT_CLASS_NAME },
  "controller-class": { type: "string" as const, default: CONTROLLER_NAME },
  "watch-ingress-class": { type: "string" as const, multiple: true as const, default: [] as string[] },
  "watch-ingress-without-class": { type: "boolean" as const, default: false },
  "annotations-prefix": { type: "string" as const, default: NGINX_ANNOTATION_PREFIX },
  configmap: { type: "string" as const },
};

export const classFlagsUsage = `  --ingress-class NAME              class name for the legacy kubernetes.io/ingress.class annotation (default ${DEFAULT_CLASS_NAME})
  --controller-class NAME           serve the IngressClasses whose spec.controller is NAME
                                    (default ${CONTROLLER_NAME}; k8s.io/ingress-nginx takes over ingress-nginx's)
  --watch-ingress-class NAME[,NAME…] also serve these IngressClass names, whatever their controller
  --watch-ingress-without-class     also serve Ingresses that name no class
  --annotations-prefix PREFIX       annotations read (default ${NGINX_ANNOTATION_PREFIX})
  --configmap NS/NAME               an ingress-nginx controller ConfigMap: its keys set cluster-wide defaults`;

interface ClassValues {
  "ingress-class": string;
  "controller-class": string;
  "watch-ingress-class": string[];
  "watch-ingress-without-class": boolean;
  "annotations-prefix": string;
  configmap?: string | undefined;
}

export interface ClassSelectionOptions {
  ingressClass: string;
  controllerClass: string;
  watchIngressClasses: string[];
  watchWithoutClass: boolean;
  annotationsPrefix: string;
  configMap: ReturnType<typeof parseObjectRef> | undefined;
}

/** The flags' values, checked. */
export function classOptionsOf(v: ClassValues): ClassSelectionOptions {
  const prefix = v["annotations-prefix"];
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(prefix)) throw new CliUsageError(`--annotations-prefix "${prefix}" is not a DNS subdomain`);
  let configMap: ClassSelectionOptions["configMap"];
  if (v.configmap !== undefined) {
    try {
      configMap = parseObjectRef("--configmap", v.configmap);
    } catch (err) {
      if (err instanceof ObjectRefError) throw new CliUsageError(err.message);
      throw err;
    }
  }
  return {
    ingressClass: v["ingress-class"],
    controllerClass: v["controller-class"],
    watchIngressClasses: v["watch-ingress-class"]
      .flatMap((s) => s.split(","))
      .map((s) => s.trim())
      .filter((s) => s !== ""),
    watchWithoutClass: v["watch-ingress-without-class"],
    annotationsPrefix: prefix,
    configMap,
  };
}

/**
 * Compile options for manifests read offline: the `--configmap` is looked up among them (absent: the defaults, and
 * a finding saying so).
 */
export function offlineCompileOptions(o: ClassSelectionOptions, snapshot: Snapshot): { options: CompileOptions; configMapFindings: GlobalFinding[] } {
  const options: CompileOptions = {
    controllerName: o.controllerClass,
    ingressClass: o.ingressClass,
    watchIngressClasses: o.watchIngressClasses,
    watchWithoutClass: o.watchWithoutClass,
    annotationsPrefix: o.annotationsPrefix,
  };
  if (o.configMap === undefined) return { options, configMapFindings: [] };
  const ref = o.configMap;
  const cm = snapshot.configMaps?.find((c) => c.metadata.name === ref.name && (c.metadata.namespace ?? "default") === ref.namespace);
  if (cm === undefined) {
    return { options, configMapFindings: [{ key: "(ConfigMap)", value: refKey(ref), verdict: "invalid", message: `ConfigMap ${refKey(ref)} is not in the files given; the defaults apply` }] };
  }
  const { globals, findings } = readGlobals(cm.data);
  return { options: { ...options, globals }, configMapFindings: findings };
}

// `bollard migrate -f PATH [-f PATH …]`: before switching from ingress-nginx, what becomes of each Ingress and each
// of its annotations — supported, supported with a difference, unsupported, invalid — read offline from manifests
// by the same code the ingress runs (so a missing Secret is reported as the cluster would report it).
import { ManifestError, readManifests } from "@bollard/core";
import { type AnnotationFinding, compileRoutes, type Diagnostic, mergeSnapshots, refKey, type Snapshot, snapshotFromObjects } from "@bollard/ingress";
import { CliUsageError, type Command, parseFlags } from "../command.ts";
import { classFlags, classFlagsUsage, classOptionsOf, offlineCompileOptions } from "./class-flags.ts";

const usage = "usage: bollard migrate -f PATH [-f PATH …] [-o text|json] [--strict] [class flags]";

const help = `${usage}
  -f PATH          a YAML/JSON file or a directory of them (repeatable): the Ingresses, and the Secrets,
                   ConfigMaps and Services they name (without them, their checks report them missing)
  -o FORMAT        text (default) or json
  --strict         exit 1 when any annotation is unsupported or invalid
${classFlagsUsage}

Without class flags, the Ingresses of ingress-nginx are read: --controller-class k8s.io/ingress-nginx
--ingress-class nginx --watch-ingress-class nginx --watch-ingress-without-class.`;

export interface MigrationReport {
  ingresses: {
    ingress: string;
    annotations: { annotation: string; value: string; verdict: AnnotationFinding["verdict"]; message: string; refuses: boolean }[];
    /** the Ingress's routes would answer 503 (a security annotation that cannot be honoured) */
    refused: boolean;
    /** other problems the ingress would report (missing Service, conflicting route…) */
    problems: string[];
  }[];
  configMap: { key: string; value: string; verdict: string; message: string }[];
  summary: Record<AnnotationFinding["verdict"], number> & { ingresses: number; refused: number };
}

export const command: Command = async (argv) => {
  const explicitClass = argv.some((a) => /^--(controller-class|ingress-class|watch-ingress-class|watch-ingress-without-class)\b/.test(a));
  const { values } = parseFlags(argv, {
    file: { type: "string", short: "f", multiple: true },
    output: { type: "string", short: "o", default: "text" },
    strict: { type: "boolean", default: false },
    ...classFlags,
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${help}\n`);
    return 0;
  }
  if (!values.file?.length) throw new CliUsageError(`-f PATH is required\n${usage}`);
  if (values.output !== "text" && values.output !== "json") throw new CliUsageError(`-o must be text or json, not "${values.output}"`);
  const classOptions = classOptionsOf(values);
  if (!explicitClass) Object.assign(classOptions, { controllerClass: "k8s.io/ingress-nginx", ingressClass: "nginx", watchIngressClasses: ["nginx"], watchWithoutClass: true });

  let snapshot: Snapshot;
  try {
    snapshot = mergeSnapshots((await readManifests(values.file)).map((file) => snapshotFromObjects(file.objects, file.path)));
  } catch (err) {
    // Manifests that cannot be read are bad input, like bad flags: one line naming the file, exit 2.
    if (!(err instanceof ManifestError)) throw err;
    process.stderr.write(`bollard migrate: ${err.message}
`);
    return 2;
  }
  const { options, configMapFindings } = offlineCompileOptions(classOptions, snapshot);
  const table = compileRoutes(snapshot, options);
  const report = migrationReport(table.ingresses.map(refKey), table.annotations, table.diagnostics, configMapFindings);
  process.stdout.write(values.output === "json" ? `${JSON.stringify(report, null, 2)}\n` : textReport(report));
  const bad = report.summary.unsupported + report.summary.invalid;
  return values.strict && bad > 0 ? 1 : 0;
};

export function migrationReport(
  ingresses: readonly string[],
  annotations: ReadonlyMap<string, readonly AnnotationFinding[]>,
  diagnostics: readonly Diagnostic[],
  configMap: MigrationReport["configMap"],
): MigrationReport {
  const summary = { ingresses: ingresses.length, refused: 0, supported: 0, different: 0, unsupported: 0, invalid: 0 };
  const out: MigrationReport["ingresses"] = ingresses.map((ingress) => {
    const findings = annotations.get(ingress) ?? [];
    for (const f of findings) summary[f.verdict]++;
    const refused = findings.some((f) => f.refuses);
    if (refused) summary.refused++;
    return {
      ingress,
      annotations: findings.map((f) => ({ annotation: f.key, value: f.value, verdict: f.verdict, message: f.message, refuses: f.refuses })),
      refused,
      problems: diagnostics
        .filter((d) => refKey(d.ingress) === ingress && d.reason !== "InvalidAnnotation" && d.reason !== "UnsupportedAnnotation")
        .map((d) => `${d.reason} ${d.field}: ${d.message}`),
    };
  });
  return { ingresses: out, configMap: [...configMap], summary };
}

const label: Record<AnnotationFinding["verdict"], string> = {
  supported: "supported",
  different: "supported, differs",
  unsupported: "UNSUPPORTED",
  invalid: "INVALID",
};

export function textReport(report: MigrationReport): string {
  const lines: string[] = [];
  for (const i of report.ingresses) {
    lines.push(`${i.ingress}${i.refused ? "  — would answer 503 until fixed (a security annotation cannot be honoured)" : ""}`);
    if (i.annotations.length === 0) lines.push("  (no ingress-nginx annotations)");
    for (const a of i.annotations) {
      const head = `  ${(a.refuses ? `${label[a.verdict]} → 503` : label[a.verdict]).padEnd(20)} ${a.annotation.replace(/^.*\//, "")}: ${JSON.stringify(a.value)}`;
      lines.push(a.message === "" ? head : `${head}\n${" ".repeat(23)}${a.message}`);
    }
    for (const p of i.problems) lines.push(`  problem              ${p}`);
  }
  if (report.configMap.length > 0) {
    lines.push("ConfigMap");
    for (const c of report.configMap) lines.push(`  ${c.verdict.padEnd(20)} ${c.key}: ${JSON.stringify(c.value)}\n${" ".repeat(23)}${c.message}`);
  }
  const s = report.summary;
  lines.push(
    `${s.ingresses} Ingresses; annotations: ${s.supported} supported, ${s.different} supported with a difference, ${s.unsupported} unsupported, ${s.invalid} invalid; ${s.refused} Ingresses would answer 503`,
  );
  return `${lines.join("\n")}\n`;
}

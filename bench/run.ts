// `npm run bench [-- <part>...]`: runs the selected benchmark parts (all by default, in this order), writes
// bench/results/<part>.json and regenerates docs/benchmarks.md. Not a test: nothing here is asserted.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { warmCompileCache } from "@bollard/lab";
import { describeMachine } from "./lib/machine.ts";
import type { Part } from "./lib/part.ts";
import { type PartRecord, parseReport, renderReport } from "./lib/report.ts";
import { createScope, type Scope } from "./lib/scope.ts";

const here = dirname(fileURLToPath(import.meta.url));
const resultsDir = join(here, "results");
const reportPath = resolve(here, "../docs/benchmarks.md");

/** name → module exporting `part`; loaded only when selected */
const PARTS: Record<string, string> = {
  routes: "./routes.ts",
  proxy: "./proxy.ts",
  dataplane: "./dataplane.ts",
  policies: "./policies.ts",
  allocation: "./allocation.ts",
  propagation: "./propagation.ts",
  lab: "./lab.ts",
  "lab-path": "./lab-path.ts",
  image: "./image.ts",
  membership: "./membership.ts",
  bgp: "./bgp.ts",
};
const ORDER = Object.keys(PARTS);
const loadAverage = () => loadavg()[0] ?? Number.NaN;

const args = process.argv.slice(2).filter((a) => a !== "--");
if (args.includes("--help") || args.includes("-h")) {
  process.stdout.write(`usage: npm run bench [-- ${ORDER.join("|")} ...]\n       npm run bench -- --report   (only re-render docs/benchmarks.md)\n`);
  process.exit(0);
}
const reportOnly = args.includes("--report");
const selected = reportOnly ? [] : args.length === 0 ? ORDER : args;
const unknown = selected.filter((a) => !(a in PARTS));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown part ${unknown.join(", ")}; parts are ${ORDER.join(", ")}\n`);
  process.exit(2);
}
if (selected.length > 0 && process.getuid?.() !== 0) {
  process.stderr.write("bench: needs root (network namespaces, taskset on nginx, arping in the lab)\n");
  process.exit(2);
}

let current: Scope | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping what was started\n`);
    void (current?.close() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

await mkdir(resultsDir, { recursive: true });
const machine = selected.length > 0 ? await describeMachine() : undefined;
// The `bollard` processes the parts start load from Node's compile cache, as the images' do: filled before any runs.
if (selected.length > 0) await warmCompileCache(process.env);
for (const name of selected) {
  const { part } = (await import(PARTS[name] as string)) as { part: Part };
  const dir = await mkdtemp(join(tmpdir(), `bollard-bench-${name}-`));
  const scope = createScope();
  current = scope;
  const startedAt = new Date();
  const loadStart = loadAverage();
  const log = (line: string) => process.stdout.write(`[${name}] ${line}\n`);
  log(`${part.title}`);
  let record: PartRecord;
  try {
    const output = await part.run({ dir, scope, log });
    record = { part: name, title: part.title, startedAt: startedAt.toISOString(), durationS: 0, machine: machine as NonNullable<typeof machine>, ...output };
  } catch (err) {
    const e = err as Error;
    log(`failed: ${e.stack ?? e.message}`);
    record = {
      part: name,
      title: part.title,
      startedAt: startedAt.toISOString(),
      durationS: 0,
      machine: machine as NonNullable<typeof machine>,
      commands: [],
      tables: [],
      verdicts: [],
      notes: [],
      data: null,
      error: e.message,
    };
  } finally {
    await scope.close();
    current = undefined;
  }
  record.durationS = (Date.now() - startedAt.getTime()) / 1000;
  record.load = { start: loadStart, end: loadAverage() };
  await writeFile(join(resultsDir, `${name}.json`), `${JSON.stringify(record, null, 2)}\n`);
  if (record.error === undefined && process.env.BENCH_KEEP !== "1") await rm(dir, { recursive: true, force: true });
  else log(`scratch files kept in ${dir}`);
  log(`done in ${Math.round(record.durationS)} s`);
}

const records: PartRecord[] = [];
for (const file of (await readdir(resultsDir)).filter((f) => f.endsWith(".json"))) {
  const record = JSON.parse(await readFile(join(resultsDir, file), "utf8")) as PartRecord;
  if (ORDER.includes(record.part)) records.push(record);
}
await mkdir(dirname(reportPath), { recursive: true });
// parts without a local result keep what the current report says of them
const previous = await readFile(reportPath, "utf8").then(parseReport, () => undefined);
await writeFile(reportPath, renderReport(records, ORDER, previous));
process.stdout.write(`bench: wrote ${reportPath}\n`);

// `bollard explain route -f PATH [-f PATH …] --url URL`: which Ingress route serves a URL, answered from
// manifests on disk by the same compiler and matcher the proxy uses.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { compileRoutes, describeMatch, ManifestError, matchRoute, mergeSnapshots, parseManifests, type Snapshot, snapshotFromObjects } from "@bollard/ingress";
import { CliUsageError, type Command, parseFlags } from "../command.ts";

const usage = "usage: bollard explain route -f PATH [-f PATH …] --url URL";

export const command: Command = async (argv) => {
  const { values } = parseFlags(argv, {
    file: { type: "string", short: "f", multiple: true },
    url: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n  -f PATH   a YAML/JSON file or a directory of them (repeatable)\n  --url URL  e.g. http://foo.com/api?q\n`);
    return 0;
  }
  if (!values.file?.length) throw new CliUsageError(`-f PATH is required\n${usage}`);
  if (values.url === undefined) throw new CliUsageError(`--url is required\n${usage}`);
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw new CliUsageError(`--url "${values.url}" is not a URL like http://host/path`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new CliUsageError(`--url must be http:// or https://, not ${url.protocol}`);

  let snapshot: Snapshot;
  try {
    snapshot = mergeSnapshots(manifestFiles(values.file).map((file) => snapshotFromObjects(parseManifests(readFileSync(file, "utf8"), file), file)));
  } catch (err) {
    if (err instanceof ManifestError || isFsError(err)) {
      process.stderr.write(`bollard explain route: ${(err as Error).message}\n`);
      return 2;
    }
    throw err;
  }
  const table = compileRoutes(snapshot);
  process.stdout.write(`${JSON.stringify(describeMatch(matchRoute(table, url.host, url.pathname)))}\n`);
  return 0;
};

/** The files behind -f: files as given, directories walked for *.yaml, *.yml and *.json, sorted. */
function manifestFiles(paths: string[]): string[] {
  const files: string[] = [];
  const walk = (path: string, top: boolean) => {
    if (statSync(path).isDirectory()) {
      for (const entry of readdirSync(path).sort()) walk(join(path, entry), false);
    } else if (top || /\.(ya?ml|json)$/.test(path)) {
      files.push(path);
    }
  };
  for (const p of paths) walk(p, true);
  return files;
}

const isFsError = (err: unknown): boolean => err instanceof Error && typeof (err as NodeJS.ErrnoException).code === "string" && (err as NodeJS.ErrnoException).syscall !== undefined;

// `bollard explain announcer -f PATH [-f PATH …] [--live-nodes n1,n2,…]`: which node announces each
// Service address at layer 2, and why nobody does, from manifests on disk, by the speaker's election.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { type ElectionInput, electAnnouncers, groupObjects, ManifestError, ObjectShapeError, parseManifests } from "@bollard/speaker";
import { CliUsageError, type Command, parseFlags } from "../command.ts";

const usage = "usage: bollard explain announcer -f PATH [-f PATH …] [--live-nodes n1,n2,…] [--ignore-exclude-lb]";

/** A manifest file that cannot be read or parsed; names the file. */
class ManifestFileError extends Error {
  override name = "ManifestFileError";
}

export const command: Command = async (argv) => {
  const { values } = parseFlags(argv, {
    file: { type: "string", short: "f", multiple: true },
    "live-nodes": { type: "string" },
    "ignore-exclude-lb": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(
      `${usage}\n` +
        "  -f PATH              a YAML/JSON file or a directory of them (repeatable): Nodes, Services,\n" +
        "                       EndpointSlices, IPAddressPools, L2Advertisements\n" +
        "  --live-nodes LIST    nodes whose speaker is alive, comma-separated (default: every Node)\n" +
        "  --ignore-exclude-lb  let nodes labelled exclude-from-external-load-balancers announce\n",
    );
    return 0;
  }
  if (!values.file?.length) throw new CliUsageError(`-f PATH is required\n${usage}`);
  const liveNodes = values["live-nodes"];
  const liveSpeakers =
    liveNodes === undefined
      ? null
      : new Set(
          liveNodes
            .split(",")
            .map((n) => n.trim())
            .filter((n) => n !== ""),
        );

  const grouped: Omit<ElectionInput, "liveSpeakers"> = { nodes: [], services: [], endpointSlices: [], pools: [], advertisements: [] };
  try {
    for (const file of manifestFiles(values.file)) {
      let objects: ReturnType<typeof groupObjects>;
      try {
        objects = groupObjects(parseManifests(readManifest(file), file));
      } catch (err) {
        if (err instanceof ObjectShapeError) throw new ManifestFileError(`${file}: ${err.message}`);
        throw err;
      }
      for (const key of Object.keys(grouped) as Array<keyof typeof grouped>) (grouped[key] as unknown[]).push(...objects[key]);
    }
  } catch (err) {
    if (err instanceof ManifestFileError || err instanceof ManifestError) {
      process.stderr.write(`bollard explain announcer: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const result = electAnnouncers({ ...grouped, liveSpeakers }, { ignoreExcludeLB: values["ignore-exclude-lb"] ?? false, loadBalancerClass: null });
  for (const error of result.configErrors) {
    process.stderr.write(`bollard explain announcer: ignoring ${error.kind} ${error.namespace}/${error.name}: ${error.message}\n`);
  }
  const announcements = result.announcements.map(({ namespace, name, ip, node, reason }) =>
    node === null ? { namespace, name, ip, node, reason } : { namespace, name, ip, node },
  );
  process.stdout.write(`${JSON.stringify({ announcements })}\n`);
  return 0;
};

/** The files behind -f: files as given, directories walked for *.yaml, *.yml and *.json, sorted. */
function manifestFiles(paths: string[]): string[] {
  const files: string[] = [];
  const walk = (path: string, top: boolean) => {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (err) {
      throw new ManifestFileError(`${path}: ${(err as Error).message}`);
    }
    if (isDirectory) {
      for (const entry of readdirSync(path).sort()) walk(join(path, entry), false);
    } else if (top || /\.(ya?ml|json)$/.test(path)) {
      files.push(path);
    }
  };
  for (const path of paths) walk(path, true);
  return files;
}

function readManifest(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ManifestFileError(`${file}: ${(err as Error).message}`);
  }
}

// `bollard explain route -f PATH [-f PATH …] --url URL`: which Ingress route serves a URL, answered from
// manifests on disk by the same compiler and matcher the proxy uses.
import { readManifests } from "@bollard/core";
import { compileRoutes, describeMatch, matchRoute, mergeSnapshots, snapshotFromObjects } from "@bollard/ingress";
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

  const snapshot = mergeSnapshots((await readManifests(values.file)).map((file) => snapshotFromObjects(file.objects, file.path)));
  const table = compileRoutes(snapshot);
  process.stdout.write(`${JSON.stringify(describeMatch(matchRoute(table, url.host, url.pathname)))}\n`);
  return 0;
};

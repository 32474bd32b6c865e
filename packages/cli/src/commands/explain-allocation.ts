// `bollard explain allocation -f PATH [-f PATH …]`: which address each LoadBalancer Service would get,
// answered from manifests on disk by the controller's own allocator.
import { explainAllocation } from "@bollard/controller";
import { readManifests } from "@bollard/core";
import { CliUsageError, type Command, parseFlags } from "../command.ts";

const usage = "usage: bollard explain allocation -f PATH [-f PATH …]";

export const command: Command = async (argv) => {
  const { values } = parseFlags(argv, {
    file: { type: "string", short: "f", multiple: true },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(
      `${usage}\n  -f PATH   a YAML/JSON file (multi-document) or a directory of them (repeatable), holding\n            IPAddressPool, Service and Namespace objects; other kinds are ignored\n`,
    );
    return 0;
  }
  if (!values.file?.length) throw new CliUsageError(`-f PATH is required\n${usage}`);
  const objects = (await readManifests(values.file)).flatMap((file) => file.objects);
  const result = explainAllocation(objects);
  if ("errors" in result) {
    const lines = result.errors.map((error) => `  ${error.message}`).join("\n");
    process.stderr.write(`bollard explain allocation: invalid IPAddressPool configuration:\n${lines}\n`);
    return 2;
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
};

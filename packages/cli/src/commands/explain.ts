// `bollard explain route|allocation|announcer`: each question lives in ./explain-<what>.ts and is loaded on
// demand, so one never pays for the others' dependencies.
import { ManifestError } from "@bollard/core";
import { CliUsageError, type Command } from "../command.ts";

const questions = ["route", "allocation", "announcer"] as const;

export const command: Command = async (argv) => {
  const [what, ...rest] = argv;
  if (what === undefined || what === "--help" || what === "-h") {
    process.stdout.write(`usage: bollard explain ${questions.join("|")} [flags]\n`);
    return what === undefined ? 2 : 0;
  }
  if (!(questions as readonly string[]).includes(what)) {
    throw new CliUsageError(`unknown question "${what}" (expected ${questions.join(", ")})`);
  }
  const { command: explain } = (await import(`./explain-${what}.ts`)) as { command: Command };
  try {
    return await explain(rest);
  } catch (err) {
    // Manifests that cannot be read are bad input, like bad flags: one line naming the file, exit 2.
    if (err instanceof ManifestError) {
      process.stderr.write(`bollard explain ${what}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
};

import { parseArgs, type ParseArgsConfig } from "node:util";

/** A subcommand: receives the arguments after its name, resolves to the process exit code. */
export type Command = (argv: string[]) => Promise<number>;

/** Bad flags or arguments: printed as one line, exit code 2. */
export class CliUsageError extends Error {
  override name = "CliUsageError";
}

/** `parseArgs` that turns its errors into CliUsageError. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
}

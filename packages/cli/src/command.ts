import { parseArgs, type ParseArgsConfig } from "node:util";
import { createLogger, type Logger, LogLevelError } from "@bollard/core";

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

/** A port-number flag, decimal digits only; `min` 1 where 0 ("pick a free port") makes no sense. */
export function parsePort(flag: string, text: string, min: 0 | 1 = 0): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < min || port > 65535) throw new CliUsageError(`${flag} "${text}" is not a port number`);
  return port;
}

/** A long-running command's logger at its --log-level (empty or absent: env LOG_LEVEL, else info). */
export function createCommandLogger(name: string, level: string | undefined): Logger {
  try {
    return createLogger({ name, level: level || undefined });
  } catch (err) {
    if (err instanceof LogLevelError) throw new CliUsageError(err.message);
    throw err;
  }
}

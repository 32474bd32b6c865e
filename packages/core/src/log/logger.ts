import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

export type LoggerOptions = {
  name: string;
  /** From a command-line flag; falls back to env LOG_LEVEL, then "info". */
  level?: string;
  /** Where the JSON lines go (default stdout); tests pass a stream to read them back. */
  destination?: NodeJS.WritableStream;
};

const LEVELS = new Set<string>(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

export class LogLevelError extends Error {
  override name = "LogLevelError";
  readonly level: string;
  constructor(level: string) {
    super(`unknown log level ${JSON.stringify(level)}; use one of ${[...LEVELS].join(", ")}`);
    this.level = level;
  }
}

/** A pino logger writing one JSON object per line. */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? "info";
  if (!LEVELS.has(level)) throw new LogLevelError(level);
  const settings = { name: options.name, level: level as LevelWithSilent };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

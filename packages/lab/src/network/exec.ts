// Running `ip`, `nft` and commands inside network namespaces. Arguments are passed as argv arrays, never
// through a shell, so no name or address is ever interpreted as a command.
import { execFile } from "node:child_process";

export class LabCommandError extends Error {
  override name = "LabCommandError";
  readonly command: string[];
  readonly stderr: string;
  readonly exitCode: number | null;
  constructor(command: string[], exitCode: number | null, stderr: string) {
    super(`\`${command.join(" ")}\` failed (exit ${exitCode}): ${stderr.trim()}`);
    this.command = command;
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command; rejects with LabCommandError on a non-zero exit unless `allowFailure`. */
export function run(cmd: string, args: string[], opts: { input?: string; allowFailure?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1;
      if (code !== 0 && !opts.allowFailure) reject(new LabCommandError([cmd, ...args], code, stderr || String(err?.message ?? "")));
      else resolve({ stdout, stderr, code });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export const ip = (args: string[], opts?: { allowFailure?: boolean }) => run("ip", args, opts);

/** Runs a command inside network namespace `ns`. */
export const execIn = (ns: string, cmd: string, args: string[], opts?: { input?: string; allowFailure?: boolean; timeoutMs?: number }) =>
  run("ip", ["netns", "exec", ns, cmd, ...args], opts);

// Small waits shared by the ingress tests that run `bollard ingress` as a process.
import { createServer } from "node:net";

/** A port free on 127.0.0.1 right now (the caller binds it soon after). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Retries `check` until it stops throwing; the deadline only bounds a hung test, it is not a timing claim. */
export async function eventually<T>(what: string, check: () => Promise<T>, deadlineMs = 30_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      return await check();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what}: ${(last as Error)?.message ?? last}`);
}

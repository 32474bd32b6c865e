// Clients for the proxy tests: node:http with no connection reuse unless asked, and raw sockets for what a
// well-behaved client would never send.
import { type Agent, request } from "node:http";
import { connect } from "node:net";

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: Buffer;
}

export interface RequestOptions {
  host?: string;
  path?: string;
  method?: string;
  headers?: Record<string, string | number | string[]>;
  body?: Buffer | string | AsyncIterable<Buffer>;
  agent?: Agent | false;
}

export function send(port: number, options: RequestOptions = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: options.method ?? "GET",
        path: options.path ?? "/",
        headers: { host: options.host ?? "test.local", ...options.headers },
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    const body = options.body;
    if (body === undefined) req.end();
    else if (typeof body === "string" || Buffer.isBuffer(body)) req.end(body);
    else
      (async () => {
        for await (const chunk of body) if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
        req.end();
      })().catch(reject);
  });
}

export const json = <T>(r: Response): T => JSON.parse(r.body.toString("utf8")) as T;

/** Writes `text` on a fresh connection and collects everything until the server closes it (or `waitMs`). */
export function rawExchange(port: number, text: string | Buffer, waitMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on("data", (c) => chunks.push(c));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
    socket.on("error", (err) => {
      if ((err as NodeJS.ErrnoException).code === "ECONNRESET") return;
      clearTimeout(timer);
      reject(err);
    });
    socket.write(text);
  });
}

export const statusOf = (raw: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);

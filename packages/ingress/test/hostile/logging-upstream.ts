// An upstream that records every byte it receives: a raw TCP front (the record) piped into a real HTTP/1.1
// server (so a request smuggled into the byte stream is parsed as a real back end would parse it).
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo, createServer as createTcpServer, connect, type Socket } from "node:net";

export interface LoggingUpstream {
  port: number;
  /** every byte received, per connection, in arrival order */
  readonly connections: readonly { bytes: Buffer[] }[];
  /** connections open right now */
  readonly open: number;
  /** the most connections open at once */
  readonly peakOpen: number;
  /** request targets the HTTP server parsed, in order */
  readonly targets: readonly string[];
  /** request header lines the HTTP server parsed, per request */
  readonly heads: readonly { target: string; rawHeaders: string[] }[];
  /** everything received, as latin1 text */
  text(): string;
  close(): Promise<void>;
}

/**
 * `GET /hold?ms=N` answers after N ms; `/upgrade` switches protocols on a WebSocket-style Upgrade and echoes;
 * anything else answers 200 with the target after reading the body.
 */
export async function startLoggingUpstream(): Promise<LoggingUpstream> {
  const targets: string[] = [];
  const heads: { target: string; rawHeaders: string[] }[] = [];
  const http = createHttpServer(async (req: IncomingMessage, res: ServerResponse) => {
    targets.push(req.url ?? "");
    heads.push({ target: req.url ?? "", rawHeaders: req.rawHeaders });
    const hold = /^\/hold\?ms=(\d+)/.exec(req.url ?? "");
    let bytes = 0;
    try {
      for await (const chunk of req) bytes += (chunk as Buffer).length;
    } catch {
      return;
    }
    if (hold !== null) await new Promise((r) => setTimeout(r, Number(hold[1])));
    if (!res.destroyed) res.writeHead(200, { "content-type": "text/plain" }).end(`target=${req.url} body=${bytes}\n`);
  });
  http.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    targets.push(req.url ?? "");
    heads.push({ target: req.url ?? "", rawHeaders: req.rawHeaders });
    socket.write("HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n");
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const httpPort = (http.address() as AddressInfo).port;

  const connections: { bytes: Buffer[] }[] = [];
  const sockets = new Set<Socket>();
  let open = 0;
  let peakOpen = 0;
  const front = createTcpServer((client) => {
    const record = { bytes: [] as Buffer[] };
    connections.push(record);
    sockets.add(client);
    open++;
    peakOpen = Math.max(peakOpen, open);
    const inner = connect(httpPort, "127.0.0.1");
    sockets.add(inner);
    client.on("data", (chunk: Buffer) => {
      record.bytes.push(chunk);
      inner.write(chunk);
    });
    inner.pipe(client);
    const done = () => {
      client.destroy();
      inner.destroy();
    };
    client.once("close", () => {
      open--;
      sockets.delete(client);
      done();
    });
    inner.once("close", () => {
      sockets.delete(inner);
      done();
    });
    client.on("error", done);
    inner.on("error", done);
    client.on("end", () => inner.end());
  });
  await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
  return {
    port: (front.address() as AddressInfo).port,
    connections,
    get open() {
      return open;
    },
    get peakOpen() {
      return peakOpen;
    },
    targets,
    heads,
    text: () => connections.map((c) => Buffer.concat(c.bytes).toString("latin1")).join("\n--- next connection ---\n"),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        http.closeAllConnections();
        front.close(() => http.close(() => resolve()));
      }),
  };
}

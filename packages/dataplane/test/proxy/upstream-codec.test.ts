// The plane's own HTTP/1.1 client (native/src/h1.rs, upstream.rs) against a backend that writes its responses
// byte for byte: each way a response body can be framed reaches the client whole, the connection going back to
// the pool only after a response it could read to its end; a response that cannot be forwarded is 502 and its
// connection is closed, not reused.
import assert from "node:assert/strict";
import { Agent, request } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { test } from "node:test";
import { startBackend, tableOf } from "../../../ingress/test/helpers/backends.ts";
import { send } from "../../../ingress/test/helpers/client.ts";
import { eachPlane } from "../planes.ts";

/** What the backend writes for each path (HEAD gets the same head, without the body). */
const answers: Record<string, { head: string; body?: string; thenClose?: boolean }> = {
  "/length": { head: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Kind: length\r\n\r\n", body: "hello" },
  "/chunked": { head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kind: chunked\r\n\r\n", body: "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n" },
  "/interim": { head: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", body: "ok" },
  "/no-content": { head: "HTTP/1.1 204 No Content\r\nX-Kind: 204\r\n\r\n" },
  "/not-modified": { head: "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n" },
  "/until-close": { head: "HTTP/1.1 200 OK\r\nX-Kind: close\r\n\r\n", body: "read until the end", thenClose: true },
  "/two-lengths": { head: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", body: "hello!" },
  "/length-and-chunked": { head: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", body: "5\r\nhello\r\n0\r\n\r\n" },
  "/huge-head": { head: `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(70 * 1024)}\r\nContent-Length: 2\r\n\r\n`, body: "ok" },
  "/garbage": { head: "HTTP/1.1 200 OK\r\nbroken header line\r\n\r\n", body: "" },
};

interface RawBackend {
  port: number;
  /** per request served, the number of the backend connection it came on (1, 2, …) */
  served: number[];
  /** connections the plane has closed (its side: the backend saw their end) */
  closed: () => number;
  server: Server;
}

async function startRawBackend(): Promise<RawBackend> {
  const served: number[] = [];
  let connections = 0;
  let closed = 0;
  const server = createServer((socket: Socket) => {
    const id = ++connections;
    let buffered = "";
    socket.on("end", () => closed++);
    socket.on("error", () => {});
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      for (let end = buffered.indexOf("\r\n\r\n"); end >= 0; end = buffered.indexOf("\r\n\r\n")) {
        const [method = "", path = ""] = buffered.slice(0, buffered.indexOf("\r\n")).split(" ");
        buffered = buffered.slice(end + 4);
        served.push(id);
        const answer = answers[path] ?? { head: "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" };
        socket.write(answer.head + (method === "HEAD" ? "" : (answer.body ?? "")));
        if (answer.thenClose) socket.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("backend address");
  return { port: address.port, served, closed: () => closed, server };
}

eachPlane("upstream HTTP/1.1 codec", (kind) => {
  test("every body framing forwarded whole; the connection reused only after a response read to its end", async () => {
    const backend = await startRawBackend();
    const plane = await kind.start();
    // one client connection: one runtime thread, so one upstream pool
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      plane.setTable(tableOf([{ name: "r", routes: [{ host: "r.test", service: "r", ports: [backend.port] }] }]));
      const get = (path: string, method = "GET") => send(plane.httpPort, { host: "r.test", path, method, agent });

      const length = await get("/length");
      assert.deepEqual([length.status, length.body.toString(), length.headers["x-kind"]], [200, "hello", "length"]);
      const chunked = await get("/chunked");
      assert.deepEqual([chunked.status, chunked.body.toString(), chunked.headers["x-kind"]], [200, "hello world", "chunked"]);
      assert.equal(chunked.headers["x-trailer"], undefined);
      const interim = await get("/interim");
      assert.deepEqual([interim.status, interim.body.toString()], [200, "ok"]);
      const head = await get("/length", "HEAD");
      assert.deepEqual([head.status, head.body.length, head.headers["content-length"]], [200, 0, "5"]);
      const noContent = await get("/no-content");
      assert.deepEqual([noContent.status, noContent.body.length, noContent.headers["x-kind"]], [204, 0, "204"]);
      const notModified = await get("/not-modified");
      assert.deepEqual([notModified.status, notModified.body.length, notModified.headers.etag], [304, 0, '"e"']);
      // all on the first connection
      assert.deepEqual(backend.served, [1, 1, 1, 1, 1, 1]);

      const untilClose = await get("/until-close");
      assert.deepEqual([untilClose.status, untilClose.body.toString(), untilClose.headers["x-kind"]], [200, "read until the end", "close"]);
      assert.equal((await get("/length")).body.toString(), "hello");
      // a body that ended with its connection: the next request on a new one
      assert.deepEqual(backend.served.slice(6), [1, 2]);

      // Responses that cannot be forwarded: 502, and the connection they came on is closed by the plane
      let expected = 2;
      for (const path of ["/two-lengths", "/length-and-chunked", "/huge-head", "/garbage"]) {
        const refused = await get(path);
        assert.equal(refused.status, 502, path);
        assert.equal(backend.served.at(-1), expected, path);
        const next = await get("/length");
        assert.equal(next.body.toString(), "hello", path);
        expected++;
        assert.equal(backend.served.at(-1), expected, `${path}: its connection was not reused`);
      }
      // (the close-delimited one's, and the four refused ones')
      assert.equal(backend.closed(), 5);
      assert.equal(plane.responses(5), 4);
    } finally {
      agent.destroy();
      await plane.shutdown(1000);
      await new Promise((resolve) => backend.server.close(resolve));
    }
  });

  test("a response that starts before the request body has ended: the rest of the body is still sent, both stream", async () => {
    // the backend echoes each part as it comes, so its head goes out with the first part
    const backend = await startBackend("echo", (req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      req.pipe(res);
      return true;
    });
    // no read-ahead: the body streams through the exchange
    const plane = await kind.start({ requestBufferSize: 0 });
    try {
      plane.setTable(tableOf([{ name: "e", routes: [{ host: "e.test", service: "echo", ports: [backend.port] }] }]));
      // the client sends its second part only once the first has come back: the plane must go on sending the
      // request body after the response head has come
      const echoed = await new Promise<Buffer>((resolve, reject) => {
        const req = request({ port: plane.httpPort, host: "127.0.0.1", method: "POST", path: "/", headers: { host: "e.test", "transfer-encoding": "chunked" }, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          let seen = 0;
          res.on("data", (c: Buffer) => {
            chunks.push(c);
            seen += c.length;
            if (seen === 5 && !req.writableEnded) req.end("world");
          });
          res.on("end", () => resolve(Buffer.concat(chunks)));
          res.on("error", reject);
        });
        req.on("error", reject);
        req.write("hello");
      });
      assert.equal(echoed.toString(), "helloworld");
    } finally {
      await plane.shutdown(1000);
      await backend.close();
    }
  });

  test("an upstream that answers before reading the request body: its answer is relayed", async () => {
    const backend = await startBackend("early", (_req, res) => {
      res.writeHead(413, { "content-length": "9", connection: "close" }).end("too large");
      return true;
    });
    const plane = await kind.start({ requestBufferSize: 0 });
    try {
      plane.setTable(tableOf([{ name: "t", routes: [{ host: "t.test", service: "early", ports: [backend.port] }] }]));
      const early = await send(plane.httpPort, { host: "t.test", method: "POST", body: Buffer.alloc(256 * 1024, 1) });
      assert.deepEqual([early.status, early.body.toString()], [413, "too large"]);
    } finally {
      await plane.shutdown(1000);
      await backend.close();
    }
  });
});

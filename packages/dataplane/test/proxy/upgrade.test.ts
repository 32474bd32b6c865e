// WebSocket (and any Upgrade) traffic through the data plane: the handshake is proxied, then bytes flow both ways
// untouched, and an established connection outlives table swaps.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { after, before, test } from "node:test";
import { emptyRouteTable } from "@bollard/ingress";
import { type Backend, startBackend, tableOf } from "../../../ingress/test/helpers/backends.ts";
import { rawExchange, statusOf } from "../../../ingress/test/helpers/client.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const acceptOf = (key: string) => createHash("sha1").update(key + WS_GUID).digest("base64");

/** A backend that completes WebSocket handshakes and then echoes every byte back with a prefix. */
async function startEchoSocketBackend(): Promise<Backend & { upgradeHeaders: IncomingMessage["headers"][] }> {
  const upgradeHeaders: IncomingMessage["headers"][] = [];
  const backend = await startBackend("ws");
  const sockets = new Set<Duplex>();
  backend.server.on("upgrade", (req: IncomingMessage, socket: Duplex) => {
    upgradeHeaders.push(req.headers);
    sockets.add(socket);
    socket.on("end", () => socket.end());
    socket.on("error", () => socket.destroy());
    socket.on("close", () => sockets.delete(socket));
    if (req.headers["sec-websocket-key"] === undefined) {
      socket.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 7\r\nconnection: close\r\n\r\nno key\n");
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptOf(String(req.headers["sec-websocket-key"]))}\r\n\r\n`);
    socket.on("data", (chunk: Buffer) => socket.write(Buffer.concat([Buffer.from("echo:"), chunk])));
  });
  const close = backend.close;
  backend.close = async () => {
    for (const s of sockets) s.destroy();
    await close();
  };
  return Object.assign(backend, { upgradeHeaders });
}

/** Opens a raw connection, sends an Upgrade request and resolves with the response head and the socket. */
function openUpgrade(port: number, host: string, key: string | null): Promise<{ head: string; socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      resolve({ head: buffered.subarray(0, end).toString("latin1"), socket, rest: buffered.subarray(end + 4) });
    };
    socket.on("data", onData);
    socket.on("error", reject);
    socket.write(
      `GET /chat HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${key === null ? "" : `Sec-WebSocket-Key: ${key}\r\n`}Sec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}

function readExactly(socket: Socket, bytes: number, already: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = already;
    if (got.length >= bytes) return resolve(got);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= bytes) {
        socket.off("data", onData);
        resolve(got);
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
}

eachPlane("Upgrade / WebSocket", (kind) => {
  let backend: Awaited<ReturnType<typeof startEchoSocketBackend>>;
  let plane: RunningPlane;
  let port: number;
  before(async () => {
    backend = await startEchoSocketBackend();
    plane = await kind.start();
    port = plane.httpPort;
    plane.setTable(tableOf([{ name: "ws", routes: [{ host: "ws.test", service: "ws", ports: [backend.port] }] }]));
  });
  after(async () => {
    await plane.shutdown(1000);
    await backend.close();
  });

  test("the handshake reaches the backend with forwarding headers and its 101 comes back", async () => {
    const key = randomBytes(16).toString("base64");
    const { head, socket } = await openUpgrade(port, "ws.test", key);
    try {
      assert.match(head, /^HTTP\/1\.1 101 /);
      assert.match(head, new RegExp(`Sec-WebSocket-Accept: ${acceptOf(key).replace(/[+/]/g, "\\$&")}`, "i"));
      const seen = backend.upgradeHeaders.at(-1);
      assert.equal(seen?.upgrade, "websocket");
      assert.equal(seen?.host, "ws.test");
      assert.equal(seen?.["x-forwarded-for"], "127.0.0.1");
    } finally {
      socket.destroy();
    }
  });

  test("bytes flow both ways, large ones too, and survive a table swap that removes the route", async () => {
    const { socket, rest } = await openUpgrade(port, "ws.test", randomBytes(16).toString("base64"));
    try {
      socket.write("hello");
      assert.equal((await readExactly(socket, 10, rest)).toString(), "echo:hello");
      plane.setTable(emptyRouteTable());
      const payload = randomBytes(256 * 1024);
      let echoed = Buffer.alloc(0);
      const done = new Promise<void>((resolve) => {
        socket.on("data", (c: Buffer) => {
          echoed = Buffer.concat([echoed, c]);
          // the backend prefixes each chunk it reads; strip prefixes to compare
          const body = Buffer.from(echoed.toString("latin1").replaceAll("echo:", ""), "latin1");
          if (body.length >= payload.length) resolve();
        });
      });
      socket.write(payload);
      await done;
      assert.ok(Buffer.from(echoed.toString("latin1").replaceAll("echo:", ""), "latin1").equals(payload));
    } finally {
      socket.destroy();
      plane.setTable(tableOf([{ name: "ws", routes: [{ host: "ws.test", service: "ws", ports: [backend.port] }] }]));
    }
  });

  test("a backend that refuses to switch: its answer is relayed and the connection closed", async () => {
    const raw = await rawExchange(port, "GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    assert.equal(statusOf(raw), 400);
    assert.match(raw, /no key/);
  });

  test("an Upgrade for an unknown host → 404; for a Service without endpoints → 503", async () => {
    assert.equal(statusOf(await rawExchange(port, "GET / HTTP/1.1\r\nHost: nope.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")), 404);
    plane.setTable(tableOf([{ name: "ws", routes: [{ host: "ws.test", service: "ws", ports: [] }] }]));
    try {
      assert.equal(statusOf(await rawExchange(port, "GET / HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")), 503);
    } finally {
      plane.setTable(tableOf([{ name: "ws", routes: [{ host: "ws.test", service: "ws", ports: [backend.port] }] }]));
    }
  });
});

eachPlane("Upgrade to a silent upstream", (kind) => {
  test("an upstream that accepts the connection but never answers the Upgrade → 504", async () => {
    const silent = await startBackend("silent");
    const held = new Set<Duplex>();
    silent.server.on("upgrade", (_req: IncomingMessage, socket: Duplex) => held.add(socket)); // takes the request, never answers
    // (the wait for the upgrade's answer is bounded by the read timeout)
    const plane = await kind.start({ connectTimeout: 300, readTimeout: 300 });
    try {
      plane.setTable(tableOf([{ name: "s", routes: [{ host: "s.test", service: "s", ports: [silent.port] }] }]));
      assert.equal(statusOf(await rawExchange(plane.httpPort, "GET / HTTP/1.1\r\nHost: s.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")), 504);
    } finally {
      await plane.shutdown(1000);
      for (const s of held) s.destroy();
      await silent.close();
    }
  });
});

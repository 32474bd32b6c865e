// 10,000 random and mutated HTTP/1 requests (heads and chunked bodies, seeded so a failure replays) against the
// data plane in its own process: it must survive, answer every one with a well-formed status line it means
// (never 500: that is a bug caught by the guard), never let the upstream parse a request it did not route
// (requests hide in header values and bodies; every routed one carries the proxy's X-Request-ID), and give its
// memory back afterwards: RSS within 10 % of what it was after warming up, and the live heap too.
import assert from "node:assert/strict";
import { test } from "node:test";
import { seededRandom } from "@bollard/core";
import { rawExchange } from "../helpers/client.ts";
import { eventually } from "../helpers/wait.ts";
import { planeKinds, startDataPlane } from "./data-plane.ts";
import { startLoggingUpstream } from "./logging-upstream.ts";

const HOST = "foo.test";
const TOTAL = 10_000;
// Requests before memory is first measured: enough for V8's young generation to reach its working size under
// this load (measured: after 1,000 the live heap was already flat to the end while RSS still grew ~35 %).
const WARM_UP = 3_000;
const PARALLEL = 32;
const SEED = 0x5eed11;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// (101: a well-formed WebSocket Upgrade the fuzzer happened to write, switched by the upstream; 417: an `Expect`
// other than 100-continue, answered by Node's parser as by nginx)
const ANSWERS = new Set([101, 200, 400, 404, 408, 413, 417, 431, 501, 505]);
// Interim answers a final one may follow (`Expect: 100-continue`); 101 is final, the switch.
const INTERIM = /^(HTTP\/1\.1 1(?!01)\d\d [^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n)+/;
// The status line: HTTP/1.1, or HTTP/1.0 to a request that said HTTP/1.0 (nginx always says 1.1; the data
// plane's hyper answers an HTTP/1.0 client in its own version, which RFC 9112 allows).
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3}) [^\r\n]*\r\n/;

type Random = () => number;
const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
const int = (r: Random, n: number) => Math.floor(r() * n);

const smuggled = (i: number) => `GET /SMUGGLED-${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;

/** A request a client might well send, with a smuggling attempt riding in its body or a header value. */
function baseRequest(r: Random, i: number): string {
  const method = pick(r, ["GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH"]);
  const target = pick(r, [`/fuzz/${i}`, `/fuzz/${i}?q=${i}`, `/fuzz/%61/${i}`, `/fuzz/./${i}`, "/", "/fuzz/../fuzz"]);
  const lines = [`${method} ${target} HTTP/1.1`, `Host: ${pick(r, [HOST, HOST.toUpperCase(), `${HOST}:80`])}`];
  if (r() < 0.3) lines.push(`X-Pad: ${smuggled(i).split("\r\n")[0]}`);
  if (r() < 0.2) lines.push("Connection: keep-alive");
  const body = smuggled(i).repeat(1 + int(r, 2));
  switch (int(r, 4)) {
    case 0:
      return `${lines.join("\r\n")}\r\n\r\n`;
    case 1:
      return `${lines.join("\r\n")}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    case 2: {
      const chunks = [body.slice(0, 10), body.slice(10)].map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join("");
      return `${lines.join("\r\n")}\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`;
    }
    default:
      // Two pipelined requests on one connection.
      return `${lines.join("\r\n")}\r\n\r\nGET /fuzz/${i}/second HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
  }
}

// Framing and parsing edge cases, spliced into a base request.
const HOSTILE_LINES = [
  "Content-Length: 5",
  "Content-Length: 0",
  "Content-Length: -1",
  "Content-Length: 18446744073709551617",
  "Content-Length: 5, 5",
  "Content-Length:  4 ",
  "Transfer-Encoding: chunked",
  "Transfer-Encoding: chunked, chunked",
  "Transfer-Encoding: gzip, chunked",
  "Transfer-Encoding:  chunked",
  "Transfer-Encoding: xchunked",
  "Transfer-Encoding\t: chunked",
  " Transfer-Encoding: chunked",
  "Host: evil.test",
  "Host:",
  "X_Forwarded_For: 6.6.6.6",
  "Connection: close, Host",
  "Connection: Upgrade",
  "Upgrade: websocket",
  "Expect: 100-continue",
  "X-Folded: a\r\n b",
  "Bad Name: x",
  "\u0000: nul",
  "X-Long: " + "a".repeat(20_000),
];
const HOSTILE_CHUNKS = ["ffffffffffffffffff\r\n", "-1\r\n", "5;ext=1\r\nhello\r\n", "5\r\nhelloXX\r\n", "0\r\nTrailer: x\r\n\r\n", "\r\n", "5\nhello\n", "0\r\n\r\n" + smuggled(0)];

function mutate(r: Random, text: string): string {
  let out = text;
  for (let m = 1 + int(r, 3); m > 0; m--) {
    const at = int(r, out.length + 1);
    switch (int(r, 7)) {
      case 0: // flip a byte
        out = out.slice(0, at) + String.fromCharCode(int(r, 256)) + out.slice(at + 1);
        break;
      case 1: // a control or separator character
        out = out.slice(0, at) + pick(r, ["\r", "\n", "\r\n", "\0", " ", ":", "\t", "\x7f", "\r\n\r\n"]) + out.slice(at);
        break;
      case 2: {
        // a hostile header line after the request line
        const eol = out.indexOf("\r\n");
        if (eol >= 0) out = `${out.slice(0, eol + 2)}${pick(r, HOSTILE_LINES)}\r\n${out.slice(eol + 2)}`;
        break;
      }
      case 3: // a hostile chunk
        out = out.slice(0, at) + pick(r, HOSTILE_CHUNKS) + out.slice(at);
        break;
      case 4: // truncate
        out = out.slice(0, at);
        break;
      case 5: // another request line
        out = out.replace(/^\S+ \S+ \S+/, `${pick(r, ["GET", "get", "G ET", "CONNECT", "PRI"])} ${pick(r, ["*", "http://foo.test/x", "/fuzz", "", "/%00", "foo.test:443"])} ${pick(r, ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "HTTP/0.9", "http/1.1"])}`);
        break;
      default: // duplicate a header line
        {
          const lines = out.split("\r\n");
          const k = 1 + int(r, Math.max(1, lines.length - 2));
          if (lines[k] !== undefined && lines[k] !== "") lines.splice(k, 0, lines[k] as string);
          out = lines.join("\r\n");
        }
        break;
    }
  }
  return out;
}

for (const kind of planeKinds()) {
  test(`[${kind}] ${TOTAL} fuzzed HTTP/1 requests: the process survives, answers are well-formed, nothing is smuggled, memory returns`, { timeout: 15 * 60_000 }, async (t) => {
    const upstream = await startLoggingUpstream();
    // Short client timeouts, so that a request the fuzzer left unfinished ends soon.
    const plane = await startDataPlane(kind, { headersTimeout: 1_000, requestTimeout: 2_000, keepAliveTimeout: 200, clientBodyTimeout: 500, upstreamKeepAliveTimeout: 200 });
    try {
      await plane.setRoutes([{ name: "fuzz", routes: [{ host: HOST, service: "up", ports: [upstream.port] }] }]);
      const random = seededRandom(SEED);
      const inputs: string[] = [];
      for (let i = 0; i < WARM_UP + TOTAL; i++) inputs.push(random() < 0.25 ? baseRequest(random, i) : mutate(random, baseRequest(random, i)));
      const bad: string[] = [];
      const answers = new Map<string, number>();
      const run = async (from: number, to: number) => {
        let next = from;
        const worker = async () => {
          while (next < to) {
            const i = next++;
            const input = inputs[i] as string;
            const answer = await rawExchange(plane.httpPort, Buffer.from(input, "latin1"), 10_000);
            const line = STATUS_LINE.exec(answer.replace(INTERIM, ""));
            const http10 = /^[^\r\n]* HTTP\/1\.0\r?\n/.test(input);
            const status = line !== null && (line[1] === "1" || http10) ? line[2] : undefined;
            const key = answer === "" ? "closed" : (status ?? "ill-formed");
            answers.set(key, (answers.get(key) ?? 0) + 1);
            if (answer === "") continue; // closed without a word: allowed for garbage
            if (status === undefined || !ANSWERS.has(Number(status))) bad.push(`#${i} (seed ${SEED}): ${JSON.stringify(input.slice(0, 300))} → ${JSON.stringify(answer.slice(0, 120))}`);
          }
        };
        await Promise.all(Array.from({ length: PARALLEL }, worker));
      };
      await run(0, WARM_UP);
      const heapAfterWarmUp = await plane.collect();
      const rssAfterWarmUp = plane.rssKiB();
      await run(WARM_UP, WARM_UP + TOTAL);
      assert.ok(plane.alive(), `the data plane died:\n${plane.stderr().slice(-3000)}`);
      assert.deepEqual(bad.slice(0, 10), [], `${bad.length} ill-formed or unexpected answers`);
      // Every request the proxy routes reaches the upstream with an X-Request-ID of its making (the fuzzer never
      // sends one); a request that slipped past it inside a body or a header would arrive without.
      const ids = upstream.heads.map((h) => h.rawHeaders.filter((_, k) => k % 2 === 1 && (h.rawHeaders[k - 1] as string).toLowerCase() === "x-request-id"));
      const unrouted = upstream.heads.filter((_, k) => ids[k]?.length !== 1 || !UUID.test(ids[k]?.[0] as string));
      assert.deepEqual(unrouted.slice(0, 5).map((h) => h.target), [], `the upstream parsed ${unrouted.length} requests the proxy never routed`);
      assert.equal(new Set(ids.flat()).size, upstream.heads.length, "two upstream requests carried one request id");
      assert.ok(upstream.targets.length <= 2 * (WARM_UP + TOTAL));
      t.diagnostic(`answers: ${JSON.stringify(Object.fromEntries([...answers].sort()))}; upstream requests: ${upstream.heads.length}`);
      // Memory, once the connections are gone: RSS back within 10 % of what it was after warming up, and the live
      // heap too. Both points are measured after the data plane's collection (a last-resort one for V8, which also
      // hands back the pages its heap grew into under load: without it RSS swung from -20 % to +29 % between runs
      // with the live heap flat). Retried for a while: closed connections are freed only once their timers fire.
      const memory = (report: string) => JSON.parse(report) as { heapUsed?: number };
      const after = await eventually(
        "RSS and the live heap return within 10 % of their post-warm-up size",
        async () => {
          const report = await plane.collect();
          const rss = plane.rssKiB();
          assert.ok(rss <= rssAfterWarmUp * 1.1, `RSS ${rss} KiB after the fuzz vs ${rssAfterWarmUp} KiB after warm-up (${report} vs ${heapAfterWarmUp})`);
          const heap = memory(report).heapUsed;
          const heapBefore = memory(heapAfterWarmUp).heapUsed;
          if (heap !== undefined && heapBefore !== undefined) assert.ok(heap <= heapBefore * 1.1, `live heap ${report} after the fuzz vs ${heapAfterWarmUp} after warm-up`);
          return { rss, report };
        },
        60_000,
      );
      t.diagnostic(`RSS ${rssAfterWarmUp} KiB after ${WARM_UP} warm-up requests, ${after.rss} KiB after ${TOTAL} more; ${heapAfterWarmUp} → ${after.report}`);
    } finally {
      await plane.stop();
      await upstream.close();
    }
  });
}

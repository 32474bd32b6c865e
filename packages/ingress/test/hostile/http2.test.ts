// Hostile HTTP/2 input on the HTTPS listener, judged on the wire with a raw frame client (h2-raw.ts): a reset or
// short stream frees its upstream request, streams are capped per connection, rapid resets and CONTINUATION
// floods end that connection only, and a Host that disagrees with :authority is refused. The data plane runs in a
// process of its own (data-plane.ts).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { eventually } from "../helpers/wait.ts";
import { type DataPlane, planeKinds, startDataPlane } from "./data-plane.ts";
import { data, ERROR, FRAME, frame, headerBlock, headers, openRawH2, requestFields, rstStream, wellBehavedStatus } from "./h2-raw.ts";
import { type LoggingUpstream, startLoggingUpstream } from "./logging-upstream.ts";

const HOST = "foo.test";

/** One request from a well-behaved client on a connection of its own: the status it got. */
const wellBehaved = (port: number, headers: Record<string, string> = {}) => wellBehavedStatus(port, { authority: HOST, path: "/well-behaved", headers });

const odd = (i: number) => 2 * i + 1;

for (const kind of planeKinds()) {
  describe(`[${kind}] hostile HTTP/2 input`, () => {
    let upstream: LoggingUpstream;
    let plane: DataPlane;
    before(async () => {
      upstream = await startLoggingUpstream();
      // Bodies stream (no buffering) so that a reset arrives while an upstream request is open.
      plane = await startDataPlane(kind, { requestBufferSize: 0, upstreamKeepAliveTimeout: 200, http2MaxConcurrentStreams: 128 });
      await plane.setRoutes([{ name: "h2", routes: [{ host: HOST, service: "up", ports: [upstream.port] }] }]);
    });
    after(async () => {
      await plane.stop();
      await upstream.close();
    });
    const upstreamDrains = () => eventually("the upstream connections close", async () => assert.equal(upstream.open, 0, `${upstream.open} upstream connections still open`));

    test("streams reset after dispatch, or ended short of their content-length, free their upstream connections", async () => {
      const h2 = await openRawH2(plane.httpsPort);
      try {
        const n = 100;
        // GETs the upstream holds for a minute, reset once dispatched.
        for (let i = 0; i < n; i++) h2.send(headers(odd(i), requestFields("GET", "/hold?ms=60000", HOST), true));
        await eventually("the GETs reach the upstream", async () => assert.ok(upstream.open >= n / 2, `${upstream.open} open`));
        for (let i = 0; i < n; i++) h2.send(rstStream(odd(i), ERROR.CANCEL));
        // POSTs whose bodies never end, reset.
        for (let i = n; i < 2 * n; i++) h2.send(headers(odd(i), requestFields("POST", "/hold?ms=0", HOST, [["content-length", "10"]]), false), data(odd(i), Buffer.from("01234"), false));
        for (let i = n; i < 2 * n; i++) h2.send(rstStream(odd(i), ERROR.CANCEL));
        // Bodies that end short of their content-length (the server resets those itself).
        for (let i = 2 * n; i < 3 * n; i++) h2.send(headers(odd(i), requestFields("POST", "/hold?ms=0", HOST, [["content-length", "100"]]), false), data(odd(i), Buffer.from("short"), true));
        await upstreamDrains();
        assert.ok(plane.alive());
      } finally {
        h2.close();
      }
    });

    test("128 streams at once per connection are served; a client opening more is refused, never sent upstream", async () => {
      const full = await openRawH2(plane.httpsPort);
      try {
        for (let i = 0; i < 128; i++) full.send(headers(odd(i), requestFields("GET", "/hold?ms=1000", HOST), true));
        const answered = () => full.frames.filter((f) => f.type === FRAME.HEADERS).length;
        await full.waitFor(() => answered() === 128, 30_000);
        assert.equal(answered(), 128);
      } finally {
        full.close();
      }
      const over = await openRawH2(plane.httpsPort);
      try {
        for (let i = 0; i < 200; i++) over.send(headers(odd(i), requestFields("GET", "/hold?ms=1000", HOST), true));
        // nghttp2 answers a client past an acknowledged limit with GOAWAY (PROTOCOL_ERROR), before it has
        // acknowledged the limit with REFUSED_STREAM per stream: RFC 9113 §5.1.2 allows either.
        const refused = () => [...over.resets().values()].filter((c) => c === ERROR.REFUSED_STREAM).length;
        await over.waitFor(() => refused() >= 200 - 128 || over.goaway() !== null, 10_000);
        assert.ok(refused() >= 200 - 128 || over.goaway()?.code === ERROR.PROTOCOL_ERROR, `refused ${refused()}, GOAWAY ${JSON.stringify(over.goaway())}`);
        if (over.goaway() !== null) assert.ok((over.goaway()?.lastStream ?? 0) <= odd(127), "streams past the 128th were accepted");
      } finally {
        over.close();
      }
      assert.ok(upstream.peakOpen <= 128, `the upstream saw ${upstream.peakOpen} connections at once`);
      await upstreamDrains();
    });

    test("rapid reset: a client resetting streams past its budget gets GOAWAY; other clients are still served", async () => {
      const h2 = await openRawH2(plane.httpsPort);
      try {
        const burst: Buffer[] = [];
        for (let i = 0; i < 5_000; i++) burst.push(headers(odd(i), requestFields("GET", "/hold?ms=60000", HOST), true), rstStream(odd(i), ERROR.CANCEL));
        h2.send(...burst);
        await h2.waitFor(() => h2.goaway() !== null, 20_000);
        await Promise.race([h2.closed, new Promise((r) => setTimeout(r, 5_000))]);
        const goaway = h2.goaway();
        assert.ok(goaway !== null || h2.isClosed(), "the connection stayed open after 5,000 rapid resets");
        if (goaway !== null) assert.equal(goaway.code, ERROR.ENHANCE_YOUR_CALM);
      } finally {
        h2.close();
      }
      assert.equal(await wellBehaved(plane.httpsPort), 200);
      await upstreamDrains();
      assert.ok(plane.alive());
    });

    test("a CONTINUATION flood ends that connection, not the process, and memory stays bounded", async () => {
      const rssBefore = plane.rssKiB();
      const h2 = await openRawH2(plane.httpsPort);
      try {
        h2.send(frame(FRAME.HEADERS, 0, 1, headerBlock(requestFields("GET", "/", HOST))));
        const filler = frame(FRAME.CONTINUATION, 0, 1, headerBlock([["x-flood", "a".repeat(1000)]]));
        for (let i = 0; i < 20_000 && !h2.isClosed(); i++) {
          if (!h2.send(filler)) await new Promise((r) => setTimeout(r, 1));
        }
        await Promise.race([h2.closed, new Promise((r) => setTimeout(r, 10_000))]);
        assert.ok(h2.isClosed() || h2.goaway() !== null, "20 MB of CONTINUATION frames did not end the connection");
      } finally {
        h2.close();
      }
      assert.equal(await wellBehaved(plane.httpsPort), 200);
      assert.ok(plane.rssKiB() - rssBefore < 64 * 1024, `RSS grew by ${plane.rssKiB() - rssBefore} KiB`);
    });

    test("a Host that disagrees with :authority → 400, never routed on either", async () => {
      const before = upstream.targets.length;
      assert.equal(await wellBehaved(plane.httpsPort, { host: "evil.test" }), 400);
      assert.equal(upstream.targets.length, before);
      assert.equal(await wellBehaved(plane.httpsPort, { host: HOST }), 200);
    });
  });

}

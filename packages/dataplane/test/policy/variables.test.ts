// The request's own values in annotation templates ($http_NAME, $cookie_NAME, $arg_NAME) through the real proxy:
// hashing by a header, cookie or argument, an auth-url that passes them to the auth service, upstream-vhost from
// a header, a rewrite-target and a redirect built from them; and what a client may not smuggle through them.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Backend, type Echo, startBackend, tableOf } from "../../../ingress/test/helpers/backends.ts";
import { json, rawExchange, send, statusOf } from "../../../ingress/test/helpers/client.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";
const a = (annotations: Record<string, string>) => Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`${P}/${k}`, v]));

eachPlane("policy: request values in templates", (kind) => {
  let one: Backend;
  let two: Backend;
  let auth: Backend;
  let plane: RunningPlane;
  const checked: string[] = [];
  before(async () => {
    one = await startBackend("one");
    two = await startBackend("two");
    auth = await startBackend("auth", (req, res) => {
      checked.push(req.url ?? "");
      res.writeHead(200).end();
      return true;
    });
    plane = await kind.start();
    // the two backends are the endpoints of one Service, for hashing
    const both = (name: string, host: string, annotations: Record<string, string>, path = "/") => ({ name, annotations: a(annotations), routes: [{ host, path, service: "both", ports: [one.port, two.port] }] });
    const single = (name: string, host: string, annotations: Record<string, string>, path = "/") => ({ name, annotations: a(annotations), routes: [{ host, path, service: "one", ports: [one.port] }] });
    plane.setTable(
      tableOf([
        both("by-header", "header.test", { "upstream-hash-by": "$http_x_user_id" }),
        both("by-cookie", "cookie.test", { "upstream-hash-by": "$cookie_session" }),
        both("by-arg", "arg.test", { "upstream-hash-by": "$arg_WOPISrc" }),
        single("auth", "auth.test", { "auth-url": `http://127.0.0.1:${auth.port}/check?user=$http_x_user&id=$arg_id&c=$cookie_c` }),
        single("vhost", "vhost.test", { "upstream-vhost": "$http_x_target_host" }),
        single("rewrite", "rewrite.test", { "rewrite-target": "/r/$http_x_seg?v=$http_x_v" }, "/rw"),
        single("redirect", "redirect.test", { "permanent-redirect": "https://x.test/go?next=$arg_next&u=$http_x_u" }),
      ]),
    );
  });
  after(async () => {
    await plane.shutdown(1000);
    await one.close();
    await two.close();
    await auth.close();
  });

  const get = (host: string, path = "/", headers: Record<string, string | string[]> = {}) => send(plane.httpPort, { host, path, headers });
  const who = async (host: string, path = "/", headers: Record<string, string | string[]> = {}) => {
    const r = await get(host, path, headers);
    assert.equal(r.status, 200, `${host}${path}: ${r.body}`);
    return json<Echo>(r).backend;
  };
  /** every key reaches one endpoint each time; over the keys, both endpoints serve */
  const hashes = async (request: (key: string) => Promise<string>) => {
    const seen = new Set<string>();
    for (let n = 0; n < 16; n++) {
      const first = await request(`user-${n}`);
      seen.add(first);
      for (let i = 0; i < 3; i++) assert.equal(await request(`user-${n}`), first, `user-${n}`);
    }
    assert.deepEqual([...seen].sort(), ["one", "two"]);
  };

  test("upstream-hash-by $http_x_user_id: the same header value always reaches the same endpoint", async () => {
    await hashes((key) => who("header.test", "/", { "x-user-id": key }));
    // the other request values do not count
    const first = await who("header.test", "/a?b=1", { "x-user-id": "fixed" });
    for (let i = 0; i < 8; i++) assert.equal(await who("header.test", `/p${i}?q=${i}`, { "x-user-id": "fixed" }), first);
    // two lines of the header are one key, as nginx joins them ("a, b")
    for (let n = 0; n < 8; n++) assert.equal(await who("header.test", "/", { "x-user-id": [`u${n}`, "v"] }), await who("header.test", "/", { "x-user-id": `u${n}, v` }));
  });

  test("upstream-hash-by $cookie_session: by the cookie's value among others", async () => {
    await hashes((key) => who("cookie.test", "/", { cookie: `theme=dark; session=${key}; n=${Math.random()}` }));
  });

  test("upstream-hash-by $arg_WOPISrc: by the argument as sent, its name in any case", async () => {
    await hashes((key) => who("arg.test", `/wopi?x=${Math.random()}&wopisrc=${encodeURIComponent(`https://files/${key}`)}`));
  });

  test("auth-url with $http_, $arg_ and $cookie_: the auth service sees the values as sent", async () => {
    checked.length = 0;
    const r = await get("auth.test", "/doc?id=a%20b%26c&x=1", { "x-user": "alice", cookie: "a=1; c=v2" });
    assert.equal(r.status, 200);
    assert.deepEqual(checked, ["/check?user=alice&id=a%20b%26c&c=v2"]);
    // absent values are empty
    checked.length = 0;
    assert.equal((await get("auth.test", "/doc")).status, 200);
    assert.deepEqual(checked, ["/check?user=&id=&c="]);
  });

  test("auth-url: an encoded CR LF stays as sent; a value that cannot be in a URL refuses (500), never reaches the auth service", async () => {
    checked.length = 0;
    assert.equal((await get("auth.test", "/doc?id=%0d%0aX-Injected:%201")).status, 200);
    assert.deepEqual(checked, ["/check?user=&id=%0d%0aX-Injected:%201&c="]);
    checked.length = 0;
    assert.equal((await get("auth.test", "/doc", { "x-user": "alice smith" })).status, 500);
    assert.deepEqual(checked, []);
  });

  test("upstream-vhost $http_x_target_host: the Host sent upstream; absent, the client's stays", async () => {
    const e = json<Echo>(await get("vhost.test", "/", { "x-target-host": "internal.example" }));
    assert.equal(e.headers.host, "internal.example");
    assert.equal(json<Echo>(await get("vhost.test")).headers.host, "vhost.test");
    // an encoded CR LF is text, and one Host line goes
    const odd = json<Echo>(await get("vhost.test", "/", { "x-target-host": "a%0d%0aX-Injected:%201" }));
    assert.equal(odd.headers.host, "a%0d%0aX-Injected:%201");
    assert.equal(odd.headers["x-injected"], undefined);
  });

  test("rewrite-target with $http_: escaped in the path, as given in the arguments but for what ends a line", async () => {
    const e = json<Echo>(await get("rewrite.test", "/rw", { "x-seg": "a b/c%", "x-v": ["1&w=2", "3 4"] }));
    assert.equal(e.url, "/r/a%20b/c%25?v=1&w=2,%203%204");
  });

  test("a redirect with $arg_ and $http_: values as sent, CR LF only ever encoded", async () => {
    const r = await get("redirect.test", "/x?next=%0d%0aSet-Cookie:%20a=1", { "x-u": "b c" });
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, "https://x.test/go?next=%0d%0aSet-Cookie:%20a=1&u=b%20c");
    assert.equal(r.headers["set-cookie"], undefined);
  });

  test("raw CR, LF or folding inside a header value never reach a template: the request is refused", async () => {
    const before = one.requests + two.requests;
    for (const line of ["X-Target-Host: a\rX-Injected: 1", "X-Target-Host: a\r\n X-Injected: 1", "X-Target-Host: a\0b"]) {
      const raw = await rawExchange(plane.httpPort, `GET / HTTP/1.1\r\nHost: vhost.test\r\n${line}\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(raw), 400, JSON.stringify(line));
    }
    // a CR LF in the request target ends the request line, so it never carries into $arg_
    const raw = await rawExchange(plane.httpPort, "GET /x?next=a\rSet-Cookie:%20b HTTP/1.1\r\nHost: redirect.test\r\nConnection: close\r\n\r\n");
    assert.equal(statusOf(raw), 400);
    assert.equal(one.requests + two.requests, before);
  });
});

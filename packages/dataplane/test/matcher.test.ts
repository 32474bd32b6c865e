// One matcher: the native data plane answers the shared route fixtures (packages/ingress/test/fixtures, the
// table `bollard explain route` and the compiler tests read) exactly as the TypeScript matcher does, and
// normalises and decides on raw request targets as the same decision written in TypeScript does.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { parseManifests, seededRandom } from "@bollard/core";
import { compileRoutes, describeMatch, matchRoute, type RouteTable, snapshotFromObjects, generateDefaultCertificate } from "@bollard/ingress";
import { templateText } from "../../ingress/src/annotations/template.ts";
import { matchNormalizedRoute } from "../../ingress/src/router/match.ts";
import { normalizePath, requestHost } from "../../ingress/src/router/paths.ts";
import { loadRouteCases } from "../../ingress/test/route-cases.ts";
import { createDataPlane, type Decision, loadNative } from "../src/index.ts";

const defaultCertificate = generateDefaultCertificate();

const cases = loadRouteCases();
const tableOf = (file: string): RouteTable => compileRoutes(snapshotFromObjects(parseManifests(readFileSync(file, "utf8"), file), file));

test("the shared case table is there", () => {
  assert.ok(cases.length >= 9);
});

for (const c of cases) {
  describe(`fixture ${c.name}`, () => {
    const table = tableOf(c.fixture);
    const plane = createDataPlane({ defaultCertificate });
    plane.setTable(table);
    for (const m of c.matches) {
      test(`${m.url}: native answers as the TypeScript matcher and the fixture`, () => {
        const url = new URL(m.url);
        const native = describeMatch(plane.routeFor(url.host, url.pathname));
        assert.deepEqual(native, describeMatch(matchRoute(table, url.host, url.pathname)));
        assert.deepEqual(native, m.expect);
      });
    }
  });
}

// The proxy's decision written in TypeScript over the TypeScript matcher (400 for a target that is not a path
// or does not normalise, the www. twin's 308, then 404, app-root's 302, a permanent/temporal redirect, the 308 to
// HTTPS and 503), as the reference the native `decide` must agree with.
function typescriptDecision(table: RouteTable, host: string | undefined, target: string, secure: boolean): Decision {
  if (target.charCodeAt(0) !== 47) return { status: 400, route: null, location: null };
  const q = target.indexOf("?");
  const path = normalizePath(q < 0 ? target : target.slice(0, q));
  if (path === null) return { status: 400, route: null, location: null };
  // ingress-nginx drops one trailing "/" of the request URI (query included) from HTTPS and www. redirects
  const trimmed = target.endsWith("/") ? target.slice(0, -1) : target;
  const twin = table.wwwRedirects.get(requestHost(host));
  if (twin !== undefined) return { status: 308, route: null, location: `${secure ? "https" : "http"}://${twin}${trimmed}` };
  const route = matchNormalizedRoute(table, host, path);
  if (route === null) return { status: 404, route: null, location: null };
  const { redirect } = route.policy;
  if (redirect.appRoot !== null && path === "/" && host !== undefined) return { status: 302, route, location: `${secure ? "https" : "http"}://${host}${redirect.appRoot}` };
  if (redirect.to !== null) return { status: redirect.to.code, route, location: templateText(redirect.to.url) };
  if (!secure && route.sslRedirect && host !== undefined) return { status: 308, route, location: `https://${requestHost(host)}${redirect.preserveTrailingSlash ? target : trimmed}` };
  if (route.backend.endpoints.length === 0) return { status: 503, route, location: null };
  return { status: null, route, location: null };
}

describe("raw request targets: native decide = the TypeScript decision", () => {
  const targets = [
    "/", "/api", "/api/", "/admin", "/%61dmin", "/public/../admin", "/public/%2e%2e/admin", "/public%2F..%2Fadmin", "//admin",
    "/../foo", "/%2e%2e/foo", "/foo%zz", "/foo%", "/a%00b", "/a%4", "/exact", "/exact/", "/ex%61ct", "/caf%C3%A9/menu", "/café",
    "/docs%2fv1", "/docs/v1/x", "/x?q=/../..", "/?", "*", "http://enc.com/admin", "", "/a/./b/../c", "/%2561dmin",
    "/foo/bar/bar", "/FOO/BAR/xyz", "/api/v1?x=/", "/API", "/apix", "/x/", "/a%0Db", "/foo/", "/x?y/",
  ];
  const hosts = [undefined, "enc.com", "ENC.com:80", "enc.com.", "foo.com", "bar.foo.com", "a.bar.foo.com", "www.foo.com", "[fd00::1]:8080", "10.0.0.1", "", "regex.com", "alias.com", "www.regex.com", "plain.com", "other.com"];
  for (const c of cases) {
    test(`fixture ${c.name}`, () => {
      const table = tableOf(c.fixture);
      const plane = createDataPlane({ defaultCertificate });
      plane.setTable(table);
      for (const host of hosts) {
        for (const target of targets) {
          for (const secure of [false, true]) {
            const native = plane.decide({ host: host ?? null, target, secure });
            const expected = typescriptDecision(table, host, target, secure);
            const view = (d: Decision) => ({ status: d.status, route: d.route === null ? null : describeMatch(d.route), location: d.location });
            assert.deepEqual(view(native), view(expected), `${host} ${target} secure=${secure}`);
          }
        }
      }
    });
  }
});

describe("path normalisation: native = packages/ingress/src/router/paths.ts", () => {
  const { normalizePath: nativeNormalize } = loadNative();
  const check = (raw: string) => {
    const ts = normalizePath(raw);
    const native = nativeNormalize(Buffer.from(raw, "utf8"));
    assert.deepEqual(native == null ? null : native.toString("latin1"), ts, JSON.stringify(raw));
  };

  test("the README's spellings", () => {
    for (const raw of ["/", "/a/b/", "//a///b//", "/a/./b", "/a/.", "/a/b/..", "/a/../..", "/..", "/.hidden/x", "/a/..b", "/%61dmin", "/%2e%2e/a", "/a/%2E%2e/b", "/a%2Fb", "/a%2f..%2fb", "/%2561", "/a%20b", "/caf%C3%A9", "/café", "/a%", "/a%4", "/a%zz", "/a%00b", "/a+b", "a/b", ""]) {
      check(raw);
    }
  });

  test("20000 random targets over a hostile alphabet", () => {
    const random = seededRandom(12345); // a failure names a reproducible input
    const next = () => Math.floor(random() * 2 ** 31);
    const alphabet = ["/", "/", ".", "..", "%", "%2e", "%2E", "%2f", "%2F", "%00", "%zz", "%4", "a", "b", "é", "%C3%A9", "?", "%25", "~", " "];
    for (let i = 0; i < 20_000; i++) {
      let raw = next() % 8 === 0 ? "" : "/";
      const n = next() % 10;
      for (let j = 0; j < n; j++) raw += alphabet[next() % alphabet.length];
      check(raw);
    }
  });
});

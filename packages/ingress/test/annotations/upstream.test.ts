// How the upstream is reached: backend-protocol, proxy-ssl-*, timeouts, proxy-next-upstream*, body limits and
// the buffering knobs, annotations in → policy and findings out.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_GLOBALS } from "../../src/annotations/globals.ts";
import type { Template, UpstreamPolicy, UpstreamTlsPolicy } from "../../src/annotations/policy.ts";
import { parseSize } from "../../src/annotations/upstream.ts";
import type { Secret } from "../../src/model/objects.ts";
import { policyOf } from "./cases.ts";

const P = "nginx.ingress.kubernetes.io";
const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const b64 = (s: string) => Buffer.from(s).toString("base64");
const secrets: Secret[] = [
  { metadata: { name: "full", namespace: "default" }, data: { "ca.crt": b64(PEM), "tls.crt": b64(PEM), "tls.key": b64("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n") } },
  { metadata: { name: "ca-only", namespace: "other" }, stringData: { "ca.crt": PEM } },
  { metadata: { name: "half", namespace: "default" }, stringData: { "ca.crt": PEM, "tls.crt": PEM } },
  { metadata: { name: "not-pem", namespace: "default" }, stringData: { "ca.crt": "hello" } },
];

const BASE: UpstreamPolicy = {
  protocol: "HTTP",
  tls: null,
  connectTimeoutMs: null,
  readTimeoutMs: null,
  nextUpstream: ["error", "timeout"],
  nextUpstreamTries: 3,
  nextUpstreamTimeoutMs: 0,
  httpVersion: "1.1",
  maxBodySize: null,
  bodyBufferSize: null,
};
const SVC_NAME: Template = [{ variable: "service_name" }, { text: "." }, { variable: "namespace" }, { text: ".svc" }];
const TLS_OFF: UpstreamTlsPolicy = { ca: null, cert: null, key: null, verify: false, name: SVC_NAME, serverName: false };

type Case = [what: string, annotations: Record<string, string>, upstream: Partial<UpstreamPolicy> | null, findings: [string, string, RegExp?][]];

const cases: Case[] = [
  ["no annotations: no policy (the data plane's defaults)", {}, null, []],
  ["defaults written out: still no policy", { "proxy-next-upstream": "error timeout", "proxy-next-upstream-tries": "3", "backend-protocol": "HTTP" }, null, [["backend-protocol", "supported"], ["proxy-next-upstream", "supported"], ["proxy-next-upstream-tries", "supported"]]],
  ["HTTPS: TLS without verification by default, the Service's name", { "backend-protocol": "HTTPS" }, { protocol: "HTTPS", tls: TLS_OFF }, [["backend-protocol", "supported"]]],
  ["protocol names are case-insensitive", { "backend-protocol": "grpcs" }, { protocol: "GRPCS", tls: TLS_OFF }, [["backend-protocol", "supported"]]],
  ["GRPC: HTTP/2 cleartext, no TLS", { "backend-protocol": "GRPC" }, { protocol: "GRPC" }, [["backend-protocol", "supported"]]],
  ["AUTO_HTTP", { "backend-protocol": "AUTO_HTTP" }, { protocol: "AUTO_HTTP", tls: TLS_OFF }, [["backend-protocol", "supported"]]],
  ["FCGI is refused out loud", { "backend-protocol": "FCGI" }, null, [["backend-protocol", "invalid", /FCGI is not supported/]]],
  ["an unknown protocol", { "backend-protocol": "SPDY" }, null, [["backend-protocol", "invalid", /"SPDY" is not one of HTTP, HTTPS/]]],
  [
    "proxy-ssl-*: secret (namespace/name), verify, name template, SNI",
    { "backend-protocol": "HTTPS", "proxy-ssl-secret": "default/full", "proxy-ssl-verify": "on", "proxy-ssl-name": "api.$namespace.internal", "proxy-ssl-server-name": "on" },
    { protocol: "HTTPS", tls: { ca: PEM, cert: PEM, key: "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n", verify: true, name: [{ text: "api." }, { variable: "namespace" }, { text: ".internal" }], serverName: true } },
    [["backend-protocol", "supported"], ["proxy-ssl-name", "supported"], ["proxy-ssl-secret", "supported"], ["proxy-ssl-server-name", "supported"], ["proxy-ssl-verify", "supported"]],
  ],
  [
    "a CA-only secret in another namespace",
    { "backend-protocol": "HTTPS", "proxy-ssl-secret": "other/ca-only", "proxy-ssl-verify": "on" },
    { protocol: "HTTPS", tls: { ...TLS_OFF, ca: PEM, verify: true } },
    [["backend-protocol", "supported"], ["proxy-ssl-secret", "supported"], ["proxy-ssl-verify", "supported"]],
  ],
  [
    "a missing secret; verify on without a CA refuses every certificate (said so)",
    { "backend-protocol": "HTTPS", "proxy-ssl-secret": "nope", "proxy-ssl-verify": "on" },
    { protocol: "HTTPS", tls: { ...TLS_OFF, verify: true } },
    [["backend-protocol", "supported"], ["proxy-ssl-secret", "invalid", /Secret "nope" does not exist/], ["proxy-ssl-verify", "different", /every endpoint certificate is refused/]],
  ],
  [
    "tls.crt without tls.key; a CA that is not PEM",
    { "backend-protocol": "HTTPS", "proxy-ssl-secret": "half" },
    { protocol: "HTTPS", tls: { ...TLS_OFF, ca: PEM } },
    [["backend-protocol", "supported"], ["proxy-ssl-secret", "invalid", /tls.crt without tls.key/]],
  ],
  ["a CA that is not PEM", { "backend-protocol": "HTTPS", "proxy-ssl-secret": "not-pem" }, { protocol: "HTTPS", tls: TLS_OFF }, [["backend-protocol", "supported"], ["proxy-ssl-secret", "invalid", /ca.crt is not a PEM/]]],
  [
    "bad verify / server-name words, a bad name template, depth and protocols accepted with a difference",
    { "backend-protocol": "HTTPS", "proxy-ssl-verify": "yes", "proxy-ssl-server-name": "maybe", "proxy-ssl-name": "$nope", "proxy-ssl-verify-depth": "2", "proxy-ssl-protocols": "TLSv1.3" },
    { protocol: "HTTPS", tls: TLS_OFF },
    [
      ["backend-protocol", "supported"],
      ["proxy-ssl-name", "invalid", /\$nope is not one of the supported variables/],
      ["proxy-ssl-protocols", "different", /TLSv1.2 and TLSv1.3/],
      ["proxy-ssl-server-name", "invalid", /"maybe" is neither "on" nor "off"/],
      ["proxy-ssl-verify", "invalid", /"yes" is neither/],
      ["proxy-ssl-verify-depth", "different", /whatever its length/],
    ],
  ],
  ["proxy-ssl-* on a plain HTTP backend: no effect, said so", { "proxy-ssl-verify": "on" }, null, [["proxy-ssl-verify", "different", /backend-protocol is HTTP/]]],
  [
    "timeouts in whole seconds",
    { "proxy-connect-timeout": "3", "proxy-read-timeout": "120", "proxy-send-timeout": "30" },
    { connectTimeoutMs: 3000, readTimeoutMs: 120_000 },
    [["proxy-connect-timeout", "supported"], ["proxy-read-timeout", "supported"], ["proxy-send-timeout", "different", /within proxy-read-timeout/]],
  ],
  [
    "timeouts with a unit, or zero, are invalid (ingress-nginx takes plain seconds)",
    { "proxy-connect-timeout": "5s", "proxy-read-timeout": "0", "proxy-send-timeout": "x" },
    null,
    [["proxy-connect-timeout", "invalid", /without a unit: "5"/], ["proxy-read-timeout", "invalid", /"0" is not a number of seconds/], ["proxy-send-timeout", "invalid", /"x"/]],
  ],
  [
    "next-upstream conditions, tries and timeout",
    { "proxy-next-upstream": "error  http_503 non_idempotent", "proxy-next-upstream-tries": "5", "proxy-next-upstream-timeout": "10" },
    { nextUpstream: ["error", "http_503", "non_idempotent"], nextUpstreamTries: 5, nextUpstreamTimeoutMs: 10_000 },
    [["proxy-next-upstream", "supported"], ["proxy-next-upstream-timeout", "supported"], ["proxy-next-upstream-tries", "supported"]],
  ],
  ["next-upstream off", { "proxy-next-upstream": "off" }, { nextUpstream: [] }, [["proxy-next-upstream", "supported"]]],
  [
    "next-upstream: an unknown condition, off among others, bad tries",
    { "proxy-next-upstream": "error http_418 off", "proxy-next-upstream-tries": "-1", "proxy-next-upstream-timeout": "1m" },
    null,
    [["proxy-next-upstream", "invalid", /"http_418", "off"/], ["proxy-next-upstream-timeout", "invalid", /"1m"/], ["proxy-next-upstream-tries", "invalid", /"-1" is not an integer/]],
  ],
  ["HTTP/1.0 upstream", { "proxy-http-version": "1.0" }, { httpVersion: "1.0" }, [["proxy-http-version", "supported"]]],
  ["HTTP/2 is not a proxy-http-version", { "proxy-http-version": "2" }, null, [["proxy-http-version", "invalid", /"2" is neither "1.0" nor "1.1"/]]],
  [
    "body sizes in nginx units; request buffering on is a difference",
    { "proxy-body-size": "8m", "client-body-buffer-size": "16K", "proxy-request-buffering": "on" },
    { maxBodySize: 8 * 1024 * 1024, bodyBufferSize: 16 * 1024 },
    [["client-body-buffer-size", "supported"], ["proxy-body-size", "supported"], ["proxy-request-buffering", "different", /stream rather than go to a temporary file/]],
  ],
  ["proxy-body-size 0: no limit", { "proxy-body-size": "0" }, { maxBodySize: 0 }, [["proxy-body-size", "supported"]]],
  ["request buffering off: every body streams", { "proxy-request-buffering": "off", "client-body-buffer-size": "1m" }, { bodyBufferSize: 0 }, [["client-body-buffer-size", "supported"], ["proxy-request-buffering", "supported"]]],
  ["bad sizes", { "proxy-body-size": "8mb", "client-body-buffer-size": "-1" }, null, [["client-body-buffer-size", "invalid", /"-1" is not an nginx size/], ["proxy-body-size", "invalid", /"8mb" is not an nginx size/]]],
  [
    "response buffering knobs: accepted, no effect (we stream); bad values still invalid",
    { "proxy-buffering": "on", "proxy-buffer-size": "8k", "proxy-buffers-number": "x", "proxy-max-temp-file-size": "1024m" },
    null,
    [["proxy-buffer-size", "different", /streamed/], ["proxy-buffering", "different", /streamed/], ["proxy-buffers-number", "invalid", /"x"/], ["proxy-max-temp-file-size", "different", /streamed/]],
  ],
];

describe("upstream annotations", () => {
  for (const [what, annotations, upstream, findings] of cases) {
    test(what, () => {
      const prefixed = Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`${P}/${k}`, v]));
      const { policy, findings: got } = policyOf(prefixed, { secrets });
      assert.deepEqual(policy.upstream, upstream === null ? null : { ...BASE, ...upstream });
      assert.equal(policy.refuse, null, "nothing here is a security annotation");
      assert.deepEqual(
        got.map((f) => [f.name, f.verdict]),
        findings.map(([n, v]) => [n, v]),
      );
      for (const [name, , message] of findings) {
        if (message !== undefined) assert.match(got.find((f) => f.name === name)?.message ?? "", message, name);
      }
    });
  }

  test("globals are the defaults; annotations override them", () => {
    const globals = { ...DEFAULT_GLOBALS, proxyBodySize: 1024, proxyConnectTimeoutMs: 2000, proxyReadTimeoutMs: 9000 };
    assert.deepEqual(policyOf({}, { globals }).policy.upstream, { ...BASE, maxBodySize: 1024, connectTimeoutMs: 2000, readTimeoutMs: 9000 });
    const over = policyOf({ [`${P}/proxy-body-size`]: "2k", [`${P}/proxy-read-timeout`]: "1" }, { globals }).policy.upstream;
    assert.deepEqual(over, { ...BASE, maxBodySize: 2048, connectTimeoutMs: 2000, readTimeoutMs: 1000 });
  });

  test("nginx sizes", () => {
    assert.deepEqual(
      ["0", "1", "1k", "1K", "8m", "1g", "1.5m", "", "k", "9007199254740993"].map(parseSize),
      [0, 1, 1024, 1024, 8 * 1024 * 1024, 1024 ** 3, undefined, undefined, undefined, undefined],
    );
  });
});

// Rewrites of the upstream request: rewrite-target (with regex captures), x-forwarded-prefix, upstream-vhost;
// and use-regex, which the compiler applies to every path of the Ingress's hosts.
import type { RewritePolicy } from "./policy.ts";
import type { AnnotationReader, PolicyReader } from "./read.ts";
import { isTemplateError, parseTemplate } from "./template.ts";

export const readRewrite: PolicyReader = (read) => {
  const rewrite: RewritePolicy = {
    useRegex: read.bool("use-regex", false),
    target: readTarget(read),
    forwardedPrefix: readForwardedPrefix(read),
    upstreamVhost: readUpstreamVhost(read),
  };
  if (!rewrite.useRegex && rewrite.target === null && rewrite.forwardedPrefix === null && rewrite.upstreamVhost === null) return {};
  return { rewrite: Object.freeze(rewrite) };
};

/** The route's regex matches its paths only: a rewrite-target makes its hosts' paths regexes (ingress-nginx). */
export const usesRegex = (rewrite: RewritePolicy | null): boolean => rewrite !== null && (rewrite.useRegex || rewrite.target !== null);

function readTarget(read: AnnotationReader): RewritePolicy["target"] {
  const value = read.value("rewrite-target");
  if (value === undefined || value === "") return null;
  const target = parseTemplate(value, { captures: true });
  if (isTemplateError(target)) {
    read.invalid("rewrite-target", target.error);
    return null;
  }
  const first = target[0];
  if (first === undefined || ("text" in first && !first.text.startsWith("/"))) {
    read.invalid("rewrite-target", 'the upstream path starts with "/" or with a capture ($1…)');
    return null;
  }
  if (target.some((p) => "text" in p && !/^[\x21-\x7e]*$/.test(p.text)) || value.includes("#")) {
    read.invalid("rewrite-target", "the upstream path has no spaces, control or non-ASCII characters and no fragment");
    return null;
  }
  return target;
}

function readForwardedPrefix(read: AnnotationReader): string | null {
  const value = read.value("x-forwarded-prefix");
  if (value === undefined || value === "") return null;
  if (!/^[\x21-\x7e]*$/.test(value) || value.includes("$") || value.includes('"')) {
    read.invalid("x-forwarded-prefix", "the header value is visible ASCII, without variables or quotes");
    return null;
  }
  return value;
}

function readUpstreamVhost(read: AnnotationReader): RewritePolicy["upstreamVhost"] {
  const value = read.value("upstream-vhost");
  if (value === undefined || value === "") return null;
  const host = parseTemplate(value);
  if (isTemplateError(host)) {
    read.invalid("upstream-vhost", host.error);
    return null;
  }
  if (host.some((p) => "text" in p && !/^[A-Za-z0-9.\-:_[\]]*$/.test(p.text))) {
    read.invalid("upstream-vhost", "a host (and port) of letters, digits, '.', '-', '_', ':' and brackets, with variables");
    return null;
  }
  return host;
}

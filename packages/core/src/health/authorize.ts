// Who may read /metrics, asked of the API server the way kube-rbac-proxy and controller-runtime's
// WithAuthenticationAndAuthorization (MetalLB v0.16) ask it: a TokenReview says who the bearer token
// belongs to, a SubjectAccessReview whether that user may `get` the non-resource URL.
import { createHash } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import { kubeRequest } from "../kube/request.ts";
import { resourcePath, resources } from "../kube/resources.ts";

/** 200: allowed; 401: no or bad token; 403: a user without the RBAC; 500: the API server could not be asked. */
export type AuthorizationResult = { status: 200; user: string } | { status: 401 | 403 | 500; message: string };

/** Decides one request from its Authorization header, the path and the verb (`get`). */
export type RequestAuthorizer = (authorization: string | undefined, path: string, verb: string) => Promise<AuthorizationResult>;

export type RequestAuthorizerOptions = {
  /** Credentials allowed to create tokenreviews and subjectaccessreviews. */
  kubeConfig: KubeConfig;
  /** How long an answer is reused for the same token, path and verb (default 10 s; 0 asks every time). */
  cacheTtlMs?: number;
  /** Answers kept at most (default 1,024): a scraper's token is one entry, random tokens cannot grow memory. */
  maxCacheEntries?: number;
  timeoutMs?: number;
  now?: () => number;
};

type TokenReview = {
  status?: { authenticated?: boolean; error?: string; user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> } };
};
type SubjectAccessReview = { status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string } };

/**
 * A RequestAuthorizer backed by the API server. Answers (allowed or not) are cached briefly per token,
 * path and verb, keyed by the token's SHA-256, so a scraper every few seconds costs the API server two
 * requests per TTL, not per scrape; errors are never cached.
 */
export function createRequestAuthorizer(options: RequestAuthorizerOptions): RequestAuthorizer {
  const { kubeConfig } = options;
  const ttlMs = options.cacheTtlMs ?? 10_000;
  const maxEntries = options.maxCacheEntries ?? 1024;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { result: AuthorizationResult; expires: number }>();

  const decide = async (token: string, path: string, verb: string): Promise<AuthorizationResult> => {
    const review = await kubeRequest<TokenReview>(kubeConfig, {
      method: "POST",
      path: resourcePath(resources.tokenReviews),
      body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } },
      timeoutMs,
    });
    const user = review.status?.user;
    if (review.status?.authenticated !== true || user?.username === undefined) {
      return { status: 401, message: "Unauthorized" };
    }
    const access = await kubeRequest<SubjectAccessReview>(kubeConfig, {
      method: "POST",
      path: resourcePath(resources.subjectAccessReviews),
      body: {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        spec: {
          user: user.username,
          ...(user.uid === undefined ? {} : { uid: user.uid }),
          ...(user.groups === undefined ? {} : { groups: user.groups }),
          ...(user.extra === undefined ? {} : { extra: user.extra }),
          nonResourceAttributes: { path, verb },
        },
      },
      timeoutMs,
    });
    if (access.status?.allowed === true) return { status: 200, user: user.username };
    return { status: 403, message: `Forbidden (user=${user.username}, verb=${verb}, path=${path})` };
  };

  return async (authorization, path, verb) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    if (match === null) return { status: 401, message: "Unauthorized" };
    const token = match[1] as string;
    const key = `${createHash("sha256").update(token).digest("hex")} ${verb} ${path}`;
    const cached = cache.get(key);
    if (cached !== undefined && cached.expires > now()) return cached.result;
    cache.delete(key);
    let result: AuthorizationResult;
    try {
      result = await decide(token, path, verb);
    } catch (error) {
      return { status: 500, message: `cannot review the request: ${(error as Error).message}` };
    }
    if (ttlMs > 0) {
      // Oldest first: a Map iterates in insertion order.
      while (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
      cache.set(key, { result, expires: now() + ttlMs });
    }
    return result;
  };
}

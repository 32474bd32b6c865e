export { CONTROLLER_NAME, DEFAULT_CLASS_NAME, isOurIngress, type ClassSelection } from "./model/ingress-class.ts";
export { ManifestError, mergeSnapshots, parseManifests, snapshotFromObjects } from "./model/manifests.ts";
export * from "./model/objects.ts";
export { compileRoutes, emptyRouteTable, SSL_REDIRECT_ANNOTATION, type CompileOptions } from "./router/compile.ts";
export { describeMatch, describeTable, type RouteAnswer } from "./router/describe.ts";
export { matchCertificate, matchRoute } from "./router/match.ts";
export type * from "./router/table.ts";

// Taking over ingress-nginx's Ingresses unchanged: which Ingresses are ours with --controller-class,
// --watch-ingress-class and --watch-ingress-without-class.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Ingress, isOurIngress } from "../src/index.ts";

const classes = [
  { metadata: { name: "bollard" }, spec: { controller: "bollard.dev/ingress-controller" } },
  { metadata: { name: "nginx" }, spec: { controller: "k8s.io/ingress-nginx" } },
  { metadata: { name: "nginx-internal" }, spec: { controller: "k8s.io/ingress-nginx" } },
  { metadata: { name: "traefik" }, spec: { controller: "traefik.io/ingress-controller" } },
];
const ingress = (className?: string, legacy?: string): Ingress => ({
  metadata: { name: "x", namespace: "d", ...(legacy ? { annotations: { "kubernetes.io/ingress.class": legacy } } : {}) },
  spec: className ? { ingressClassName: className } : {},
});
const cases: { name: string; selection: Parameters<typeof isOurIngress>[2]; ours: Ingress[]; notOurs: Ingress[] }[] = [
  {
    name: "defaults: our controller and class name only",
    selection: { controllerName: "bollard.dev/ingress-controller", className: "bollard" },
    ours: [ingress("bollard"), ingress(undefined, "bollard")],
    notOurs: [ingress("nginx"), ingress(undefined, "nginx"), ingress()],
  },
  {
    name: "--controller-class k8s.io/ingress-nginx: every class of ingress-nginx's controller",
    selection: { controllerName: "k8s.io/ingress-nginx", className: "nginx" },
    ours: [ingress("nginx"), ingress("nginx-internal"), ingress(undefined, "nginx")],
    notOurs: [ingress("bollard"), ingress("traefik"), ingress(undefined, "nginx-internal"), ingress()],
  },
  {
    name: "--watch-ingress-class nginx: that class by name beside ours, also through the legacy annotation",
    selection: { controllerName: "bollard.dev/ingress-controller", className: "bollard", classNames: ["nginx"] },
    ours: [ingress("bollard"), ingress("nginx"), ingress(undefined, "nginx")],
    notOurs: [ingress("nginx-internal"), ingress("traefik"), ingress()],
  },
  {
    name: "--watch-ingress-without-class: class-less Ingresses too, never another class",
    selection: { controllerName: "bollard.dev/ingress-controller", className: "bollard", withoutClass: true },
    ours: [ingress(), ingress("bollard")],
    notOurs: [ingress("nginx"), ingress(undefined, "traefik")],
  },
];

for (const c of cases) {
  test(c.name, () => {
    for (const i of c.ours) assert.equal(isOurIngress(i, classes, c.selection), true, JSON.stringify(i));
    for (const i of c.notOurs) assert.equal(isOurIngress(i, classes, c.selection), false, JSON.stringify(i));
  });
}

test("a class served by name needs no IngressClass object (ingress-nginx's may already be deleted)", () => {
  assert.equal(isOurIngress(ingress("nginx-gone"), classes, { controllerName: "bollard.dev/ingress-controller", className: "bollard", classNames: ["nginx-gone"] }), true);
});

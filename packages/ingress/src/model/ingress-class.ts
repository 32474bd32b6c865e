import type { Ingress, IngressClass } from "./objects.ts";

export const CONTROLLER_NAME = "bollard.dev/ingress-controller";
export const DEFAULT_CLASS_NAME = "bollard";
export const LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class";
export const DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class";

export interface ClassSelection {
  /** `spec.controller` of the IngressClasses we serve */
  controllerName: string;
  /** the class name matched by the legacy annotation */
  className: string;
  /**
   * classes served by name whatever their IngressClass's controller (`--watch-ingress-class`): lets Bollard take
   * over `nginx` Ingresses during a switch-over without touching them; also matched by the legacy annotation
   */
  classNames?: readonly string[];
  /** Ingresses without any class are ours too (`--watch-ingress-without-class`) */
  withoutClass?: boolean;
}

/**
 * Whether an Ingress is ours: its `spec.ingressClassName` names an IngressClass with our controller, or a class
 * we serve by name; or it has no class name and the legacy annotation says our class name (or one served by
 * name); or it names no class at all and we serve class-less Ingresses or one of our IngressClasses is marked
 * default.
 */
export function isOurIngress(ingress: Ingress, classes: readonly IngressClass[], selection: ClassSelection): boolean {
  const className = ingress.spec?.ingressClassName;
  if (className !== undefined && className !== "") {
    if (selection.classNames?.includes(className)) return true;
    const cls = classes.find((c) => c.metadata.name === className);
    return cls?.spec?.controller === selection.controllerName;
  }
  const legacy = ingress.metadata.annotations?.[LEGACY_CLASS_ANNOTATION];
  if (legacy !== undefined && legacy !== "") return legacy === selection.className || (selection.classNames?.includes(legacy) ?? false);
  if (selection.withoutClass) return true;
  return classes.some((c) => c.spec?.controller === selection.controllerName && c.metadata.annotations?.[DEFAULT_CLASS_ANNOTATION] === "true");
}

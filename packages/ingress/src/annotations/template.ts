// Annotation values that may name nginx variables (`auth-url: http://auth/check?rd=$escaped_request_uri`):
// split once, when the annotation is read, into literal text, variables from TEMPLATE_VARIABLES and regex
// captures. The data plane only joins the parts, so no user text is evaluated when a request comes.
import { TEMPLATE_VARIABLES, type Template, type TemplatePart, type TemplateVariable } from "./policy.ts";

const known = new Set<string>(TEMPLATE_VARIABLES);

/**
 * `$name`, `${name}` and (with `captures`) `$1`…`$9` are substituted; every other `$` is an error, as it would be
 * a variable this data plane does not have. Returns the parts, or the message saying what is wrong.
 */
export function parseTemplate(value: string, options: { captures?: boolean } = {}): Template | { error: string } {
  const parts: TemplatePart[] = [];
  let text = "";
  let i = 0;
  while (i < value.length) {
    const dollar = value.indexOf("$", i);
    if (dollar < 0) {
      text += value.slice(i);
      break;
    }
    text += value.slice(i, dollar);
    let name: string;
    let end: number;
    if (value[dollar + 1] === "{") {
      const close = value.indexOf("}", dollar + 2);
      if (close < 0) return { error: `"\${" at ${dollar} is not closed` };
      name = value.slice(dollar + 2, close);
      end = close + 1;
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(value.slice(dollar + 1));
      if (m === null) return { error: `"$" at ${dollar} names no variable` };
      name = m[0];
      end = dollar + 1 + name.length;
    }
    if (/^[0-9]+$/.test(name)) {
      const n = Number(name);
      if (!options.captures) return { error: `$${name}: regex captures only exist in rewrite-target` };
      if (n < 1 || n > 9) return { error: `$${name}: captures are $1 to $9` };
      if (text !== "") parts.push({ text });
      text = "";
      parts.push({ capture: n });
    } else {
      if (!known.has(name)) return { error: `$${name} is not one of the supported variables (${TEMPLATE_VARIABLES.map((v) => `$${v}`).join(", ")})` };
      if (text !== "") parts.push({ text });
      text = "";
      parts.push({ variable: name as TemplateVariable });
    }
    i = end;
  }
  if (text !== "") parts.push({ text });
  return Object.freeze(parts);
}

/** A template written back the way an annotation spells it (for `explain route` and `bollard migrate`). */
export function templateText(template: Template): string {
  return template.map((p) => ("text" in p ? p.text : "variable" in p ? `$${p.variable}` : `$${p.capture}`)).join("");
}

export const isTemplateError = (t: Template | { error: string }): t is { error: string } => !Array.isArray(t);

// Annotation values that may name nginx variables (`auth-url: http://auth/check?rd=$escaped_request_uri`):
// split once, when the annotation is read, into literal text, variables from TEMPLATE_VARIABLES, the
// parameterised families `$http_NAME`, `$cookie_NAME`, `$arg_NAME`, and regex captures. The data plane only joins
// the parts, so no user text is evaluated when a request comes.
import { TEMPLATE_VARIABLES, type Template, type TemplatePart, type TemplateVariable } from "./policy.ts";

const known = new Set<string>(TEMPLATE_VARIABLES);
/** nginx's prefix variables this data plane gives, and the part each becomes */
const FAMILIES = [
  { prefix: "http_", kind: "header", what: "request header" },
  { prefix: "cookie_", kind: "cookie", what: "cookie" },
  { prefix: "arg_", kind: "arg", what: "query argument" },
] as const;
const SUPPORTED = `${TEMPLATE_VARIABLES.map((v) => `$${v}`).join(", ")}, $http_NAME, $cookie_NAME, $arg_NAME`;

/**
 * The part a variable name stands for. nginx reads variable names case-insensitively (it lowercases them, and
 * compares header, cookie and argument names without case), so the name is taken lower case.
 */
function variablePart(spelled: string): TemplatePart | { error: string } {
  const name = spelled.toLowerCase();
  if (known.has(name)) return { variable: name as TemplateVariable };
  for (const f of FAMILIES) {
    if (!name.startsWith(f.prefix)) continue;
    const rest = name.slice(f.prefix.length);
    if (rest === "") return { error: `$${spelled} names no ${f.what} (write $${f.prefix}NAME)` };
    // ($http_x_user_id: the X-User-Id header, as nginx matches `-` in a header name by `_`)
    if (f.kind === "header") return { header: rest.replaceAll("_", "-") };
    return f.kind === "cookie" ? { cookie: rest } : { arg: rest };
  }
  return { error: `$${spelled} is not one of the supported variables (${SUPPORTED})` };
}

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
      // (nginx's own rule for a name in braces)
      if (!/^[A-Za-z0-9_]+$/.test(name)) return { error: `"\${${name}}" is not a variable name (letters, digits and "_")` };
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
      const part = variablePart(name);
      if ("error" in part) return part;
      if (text !== "") parts.push({ text });
      text = "";
      parts.push(part);
    }
    i = end;
  }
  if (text !== "") parts.push({ text });
  return Object.freeze(parts);
}

/** A template written back the way an annotation spells it (for `explain route` and `bollard migrate`). */
export function templateText(template: Template): string {
  return template
    .map((p, i) => {
      if ("text" in p) return p.text;
      const name = "variable" in p ? p.variable : "header" in p ? `http_${p.header.replaceAll("-", "_")}` : "cookie" in p ? `cookie_${p.cookie}` : "arg" in p ? `arg_${p.arg}` : String(p.capture);
      // braces where the text after would otherwise lengthen the name
      const next = template[i + 1];
      return next !== undefined && "text" in next && /^[A-Za-z0-9_]/.test(next.text) ? `\${${name}}` : `$${name}`;
    })
    .join("");
}

/** Whether a part takes its value from the request (a variable, header, cookie or argument; not text or `$n`). */
export const isRequestValue = (p: TemplatePart): boolean => !("text" in p) && !("capture" in p);

export const isTemplateError = (t: Template | { error: string }): t is { error: string } => !Array.isArray(t);

// Regex paths (use-regex, rewrite-target): ingress-nginx writes them into nginx as `location ~* "^PATH"`, a
// case-insensitive PCRE anchored at the start. Both matchers run them here — JavaScript's RegExp in TypeScript,
// Rust's `regex` crate in the data plane — so only the part of the syntax those two read identically is accepted:
// ASCII, literal characters and escaped punctuation, `.`, classes of literals and ranges, `\d \w \b` and their
// negations, groups `(…)` and `(?:…)`, `|`, `^ $`, and the quantifiers `* + ? {n} {n,} {n,m}` (lazy with `?`).
// Lookaround, backreferences, named groups, inline flags, `\s`, hex and Unicode escapes are refused: what one engine
// would match differently (or refuse, which would stop the data plane taking the whole snapshot) never reaches it.

const MAX_LENGTH = 1024;
/** the largest product of nested counted repetitions (`(a{1,30}){1,30}` is 900): keeps the compiled size small */
const MAX_REPEAT = 1000;
const ESCAPABLE = new Set([..."\\.+*?()|[]{}^$/-"]);
const CLASS_ESCAPES = new Set(["d", "D", "w", "W"]);

/** Why `path` cannot be a regex path; null when it can. */
export function regexPathError(path: string): string | null {
  if (path.length > MAX_LENGTH) return `a regex path is at most ${MAX_LENGTH} characters`;
  if (!/^[\x20-\x7e]*$/.test(path)) return "a regex path is ASCII without control characters";
  const error = checkSyntax(path);
  if (error !== null) return error;
  try {
    new RegExp(`^${path}`, "i");
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

/** The compiled form the TypeScript matcher tests normalised paths with (the data plane builds the same). */
export const regexOf = (path: string): RegExp => new RegExp(`^${path}`, "i");

function checkSyntax(p: string): string | null {
  // per open group (the first is the whole path): the largest repetition product inside it
  const frames: number[] = [1];
  // what a quantifier would apply to (its repetition product); null after `(`, `|`, an assertion or the start
  let atom: number | null = null;
  let quantified = false;
  const setAtom = (cost: number | null) => {
    atom = cost;
    quantified = false;
    if (cost !== null) frames[frames.length - 1] = Math.max(frames[frames.length - 1] as number, cost);
  };
  let i = 0;
  while (i < p.length) {
    const c = p[i] as string;
    if (c === "\\") {
      const n = p[i + 1];
      if (n === undefined) return "a regex path does not end in a lone \\";
      if (ESCAPABLE.has(n) || CLASS_ESCAPES.has(n)) setAtom(1);
      else if (n === "b" || n === "B") setAtom(null);
      else return `\\${n} at ${i} is not supported in regex paths (escape only punctuation; \\d \\w \\b are the classes)`;
      i += 2;
      continue;
    }
    if (c === "[") {
      const end = classEnd(p, i);
      if (typeof end === "string") return end;
      setAtom(1);
      i = end + 1;
      continue;
    }
    if (c === "(") {
      if (p[i + 1] === "?") {
        if (p[i + 2] !== ":") return `(? at ${i}: only (?:…) groups are supported in regex paths (no lookaround, named groups or flags)`;
        i += 3;
      } else i++;
      frames.push(1);
      setAtom(null);
      continue;
    }
    if (c === ")") {
      if (frames.length === 1) return `")" at ${i} closes no group`;
      setAtom(frames.pop() as number);
      i++;
      continue;
    }
    if (c === "|" || c === "^" || c === "$") {
      setAtom(null);
      i++;
      continue;
    }
    if (c === "*" || c === "+" || c === "?" || c === "{") {
      let max = 1;
      let end = i + 1;
      if (c === "{") {
        const m = /^\{(\d{1,4})(,(\d{0,4}))?\}/.exec(p.slice(i));
        if (m === null) return `"{" at ${i} is not a repetition {n}, {n,} or {n,m} (escape it as \\{)`;
        const lo = Number(m[1]);
        const hi = m[3] === undefined || m[3] === "" ? lo : Number(m[3]);
        if (hi < lo) return `${m[0]} at ${i} repeats fewer times at most than at least`;
        max = Math.max(lo, hi, 1);
        end = i + m[0].length;
      }
      if (atom === null || quantified) return `"${c}" at ${i} repeats nothing (escape it, or quantify once)`;
      const cost: number = atom * max;
      if (cost > MAX_REPEAT) return `the repetitions at ${i} multiply past ${MAX_REPEAT}`;
      setAtom(cost);
      quantified = true;
      if (p[end] === "?") end++; // lazy
      i = end;
      continue;
    }
    if (c === "]" || c === "}") return `"${c}" at ${i} is not escaped`;
    setAtom(1);
    i++;
  }
  if (frames.length > 1) return "a group is not closed";
  return null;
}

/** The index of the `]` closing the class opened at `start`, or what is wrong with the class. */
function classEnd(p: string, start: number): number | string {
  let i = start + 1;
  if (p[i] === "^") i++;
  if (p[i] === "]") return `a class ${`at ${start}`} starts with "]" (escape it as \\])`;
  let prev: string | null = null;
  while (i < p.length) {
    const c = p[i] as string;
    if (c === "]") return i;
    if (c === "[") return `"[" at ${i} inside a class is not escaped`;
    if ((c === "&" || c === "-" || c === "~") && p[i + 1] === c) return `"${c}${c}" at ${i} inside a class is not supported (escape one of them)`;
    if (c === "\\") {
      const n = p[i + 1];
      if (n === undefined) break;
      if (CLASS_ESCAPES.has(n)) prev = null;
      else if (ESCAPABLE.has(n)) prev = n;
      else return `\\${n} at ${i} is not supported inside a class in regex paths`;
      i += 2;
      continue;
    }
    if (c === "-" && prev !== null && p[i + 1] !== "]") {
      const n = p[i + 1];
      if (n === "\\") {
        const e = p[i + 2];
        if (e === undefined || !ESCAPABLE.has(e)) return `the range at ${i} ends in a class or an unsupported escape`;
        i += 3;
      } else {
        if (n === "[") return `"[" at ${i + 1} inside a class is not escaped`;
        i += 2;
      }
      prev = null;
      continue;
    }
    prev = c;
    i++;
  }
  return `the class at ${start} is not closed`;
}

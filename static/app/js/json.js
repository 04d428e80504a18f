// JSON parsing that keeps 64-bit ids exact.
//
// Message ids are snowflakes above 2^53: plain JSON.parse would round them to the nearest
// double and the client would then edit, delete or mark read the wrong message. Every
// integer token of 16 or more digits therefore becomes a *string*; the rest of the app
// treats ids as opaque strings and compares them with compareIds() (BigInt), never as
// JavaScript numbers.

const BIG_INTEGER = /^-?\d{16,}$/;

// JSON.parse source text access (Chromium 114+, Firefox 135+) hands the reviver the raw
// token. Feature-detect it once.
const hasSourceAccess = (() => {
  let seen = false;
  try {
    JSON.parse("1", (_key, value, context) => {
      seen = Boolean(context && context.source === "1");
      return value;
    });
  } catch {
    seen = false;
  }
  return seen;
})();

function sourceReviver(_key, value, context) {
  if (typeof value === "number" && context && BIG_INTEGER.test(context.source)) {
    return context.source;
  }
  return value;
}

// Fallback for browsers without source access: quote long integer tokens outside strings
// before handing the text to JSON.parse. The scan only needs to know whether it is inside
// a string (and skip escaped characters there); everything else is copied through.
export function quoteBigIntegers(text) {
  let out = "";
  let copiedUpTo = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const ch = text[i];
    if (ch === '"') {
      i += 1;
      while (i < n && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      i += 1;
      continue;
    }
    if (ch === "-" || (ch >= "0" && ch <= "9")) {
      let end = i + 1;
      while (end < n && /[0-9.eE+-]/.test(text[end])) end += 1;
      const token = text.slice(i, end);
      if (BIG_INTEGER.test(token)) {
        out += text.slice(copiedUpTo, i) + '"' + token + '"';
        copiedUpTo = end;
      }
      i = end;
      continue;
    }
    i += 1;
  }
  return copiedUpTo === 0 ? text : out + text.slice(copiedUpTo);
}

export function parseJSON(text) {
  return hasSourceAccess ? JSON.parse(text, sourceReviver) : JSON.parse(quoteBigIntegers(text));
}

// For tests: the fallback path, whatever the browser supports.
export function parseJSONFallback(text) {
  return JSON.parse(quoteBigIntegers(text));
}

// Ids arrive as numbers (small ones) or strings (big ones); the app keeps them all as strings.
export function idOf(value) {
  return value === null || value === undefined ? null : String(value);
}

// Total order on ids without going through doubles. Returns -1, 0 or 1.
export function compareIds(a, b) {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function maxId(a, b) {
  if (a === null || a === undefined) return b ?? null;
  if (b === null || b === undefined) return a;
  return compareIds(a, b) >= 0 ? a : b;
}

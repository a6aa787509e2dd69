import { BuildtraceError } from '../errors.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

function countChar(s: string, ch: string): number {
  let n = 0;
  for (let i = s.indexOf(ch); i >= 0; i = s.indexOf(ch, i + 1)) n++;
  return n;
}

/** Object entries, colons inside strings (keys and values) and depth of a parsed value. */
function shape(v: unknown, depth: number, acc: { entries: number; colons: number; depth: number }): void {
  if (depth > acc.depth) acc.depth = depth;
  if (typeof v === 'string') {
    acc.colons += countChar(v, ':');
    return;
  }
  if (typeof v !== 'object' || v === null) return;
  if (Array.isArray(v)) {
    for (const x of v) shape(x, depth + 1, acc);
    return;
  }
  for (const k in v as Record<string, unknown>) {
    acc.entries++;
    acc.colons += countChar(k, ':');
    shape((v as Record<string, unknown>)[k], depth + 1, acc);
  }
}

/**
 * JSON.parse that rejects duplicate object keys (a signed statement must mean one
 * thing to every reader) and caps nesting depth.
 *
 * Fast path: the native parser, then arithmetic. Every ':' in the text is either a
 * key/value separator or inside a string; without \u escapes, the strings JSON.parse
 * kept hold exactly the colons they had in the text. So if the text's colons equal the
 * kept entries plus the kept strings' colons, no entry was dropped, i.e. no key repeats.
 * Anything else goes to the slow parser, which names the duplicate key and its offset.
 */
export function parseStrictJson(text: string, subject = 'JSON', maxDepth = 64): JsonValue {
  if (text.includes('\\u')) return parseStrictJsonSlow(text, subject, maxDepth);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return parseStrictJsonSlow(text, subject, maxDepth);
  }
  const acc = { entries: 0, colons: 0, depth: 0 };
  shape(v, 0, acc);
  if (countChar(text, ':') !== acc.entries + acc.colons || acc.depth > maxDepth) return parseStrictJsonSlow(text, subject, maxDepth);
  return v as JsonValue;
}

function parseStrictJsonSlow(text: string, subject: string, maxDepth: number): JsonValue {
  let pos = 0;
  const fail = (what: string): never => {
    throw new BuildtraceError('JSON_INVALID', `${subject}: ${what} at offset ${pos}`, { subject });
  };
  const ws = (): void => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: JSON forbids raw control characters in strings
  const CONTROL = /[\u0000-\u001f]/;
  const str = (): string => {
    const start = pos + 1;
    // fast path: jump to the closing quote; only strings with a backslash need the slow scan
    const q = text.indexOf('"', start);
    if (q < 0) fail('unterminated string');
    const bs = text.indexOf('\\', start);
    if (bs < 0 || bs > q) {
      const body = text.slice(start, q);
      if (CONTROL.test(body)) fail('control character in string');
      pos = q + 1;
      return body;
    }
    pos = start;
    for (;;) {
      const c = text.charCodeAt(pos);
      if (Number.isNaN(c)) fail('unterminated string');
      if (c === 0x22) break;
      if (c < 0x20) fail('control character in string');
      pos += c === 0x5c ? 2 : 1;
    }
    pos++;
    try {
      return JSON.parse(text.slice(start - 1, pos)) as string;
    } catch {
      return fail('bad string escape');
    }
  };
  const LITERAL = /true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  const value = (depth: number): JsonValue => {
    if (depth > maxDepth) fail('nesting too deep');
    ws();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const obj: { [k: string]: JsonValue } = {};
      const seen = new Set<string>();
      ws();
      if (text[pos] === '}') {
        pos++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[pos] !== '"') fail('expected a key');
        const k = str();
        if (seen.has(k)) fail(`duplicate key ${JSON.stringify(k)}`);
        seen.add(k);
        ws();
        if (text[pos] !== ':') fail('expected ":"');
        pos++;
        const v = value(depth + 1);
        Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[pos] === ',') pos++;
        else if (text[pos] === '}') {
          pos++;
          return obj;
        } else fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      pos++;
      const arr: JsonValue[] = [];
      ws();
      if (text[pos] === ']') {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[pos] === ',') pos++;
        else if (text[pos] === ']') {
          pos++;
          return arr;
        } else fail('expected "," or "]"');
      }
    }
    if (c === '"') return str();
    LITERAL.lastIndex = pos;
    const m = LITERAL.exec(text);
    if (!m) return fail('unexpected character');
    pos += m[0].length;
    return m[0] === 'true' ? true : m[0] === 'false' ? false : m[0] === 'null' ? null : Number(m[0]);
  };
  const v = value(0);
  ws();
  if (pos !== text.length) fail('trailing characters');
  return v;
}

export function isObject(v: JsonValue | undefined): v is { [k: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

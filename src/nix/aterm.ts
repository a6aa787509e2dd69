import { BuildtraceError } from '../errors.js';
import type { Derivation, DerivationOutput } from './derivation.js';

/**
 * Byte-exact reader and writer for the .drv ATerm
 * `Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])`.
 * Works on latin1 strings (one char per byte); convert with `Buffer.from(s, 'latin1')`.
 */

class Reader {
  pos = 0;
  constructor(
    readonly s: string,
    readonly subject: string,
  ) {}

  fail(what: string): never {
    throw new BuildtraceError('ATERM_INVALID', `${this.subject}: ${what} at byte ${this.pos}`, { subject: this.subject });
  }

  expect(lit: string): void {
    if (!this.s.startsWith(lit, this.pos)) this.fail(`expected ${JSON.stringify(lit)}`);
    this.pos += lit.length;
  }

  peek(): string | undefined {
    return this.s[this.pos];
  }

  string(): string {
    this.expect('"');
    let out = '';
    let start = this.pos;
    for (;;) {
      const c = this.s.charCodeAt(this.pos);
      if (Number.isNaN(c)) this.fail('unterminated string');
      if (c === 0x22 /* " */) {
        out += this.s.slice(start, this.pos);
        this.pos++;
        return out;
      }
      if (c === 0x5c /* \ */) {
        out += this.s.slice(start, this.pos);
        const e = this.s[this.pos + 1];
        if (e === undefined) this.fail('unterminated escape');
        out += e === 'n' ? '\n' : e === 'r' ? '\r' : e === 't' ? '\t' : e;
        this.pos += 2;
        start = this.pos;
        continue;
      }
      this.pos++;
    }
  }

  /** `[` item (`,` item)* `]` */
  list<T>(item: () => T): T[] {
    this.expect('[');
    const out: T[] = [];
    if (this.peek() === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(item());
      const c = this.peek();
      if (c === ',') this.pos++;
      else if (c === ']') {
        this.pos++;
        return out;
      } else this.fail('expected "," or "]"');
    }
  }
}

export function parseDerivation(text: string, subject = 'derivation'): Derivation {
  const r = new Reader(text, subject);
  if (text.startsWith('DrvWithVersion(')) r.fail('dynamic derivations (DrvWithVersion) are not supported');
  r.expect('Derive(');
  const outputs = new Map<string, DerivationOutput>();
  r.list(() => {
    r.expect('(');
    const name = r.string();
    r.expect(',');
    const path = r.string();
    r.expect(',');
    const hashAlgo = r.string();
    r.expect(',');
    const hash = r.string();
    r.expect(')');
    if (outputs.has(name)) r.fail(`duplicate output ${JSON.stringify(name)}`);
    outputs.set(name, { path, hashAlgo, hash });
  });
  r.expect(',');
  const inputDrvs = new Map<string, string[]>();
  r.list(() => {
    r.expect('(');
    const path = r.string();
    r.expect(',');
    const outs = r.list(() => r.string());
    r.expect(')');
    if (inputDrvs.has(path)) r.fail(`duplicate input derivation ${JSON.stringify(path)}`);
    inputDrvs.set(path, outs);
  });
  r.expect(',');
  const inputSrcs = r.list(() => r.string());
  r.expect(',');
  const platform = r.string();
  r.expect(',');
  const builder = r.string();
  r.expect(',');
  const args = r.list(() => r.string());
  r.expect(',');
  const env = new Map<string, string>();
  r.list(() => {
    r.expect('(');
    const k = r.string();
    r.expect(',');
    const v = r.string();
    r.expect(')');
    if (env.has(k)) r.fail(`duplicate environment variable ${JSON.stringify(k)}`);
    env.set(k, v);
  });
  r.expect(')');
  if (r.pos !== text.length) r.fail('trailing bytes after the derivation');
  return { outputs, inputDrvs, inputSrcs, platform, builder, args, env };
}

const ESCAPE_RE = /["\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function str(s: string): string {
  return `"${s.replace(ESCAPE_RE, (c) => ESCAPES[c] ?? c)}"`;
}

function byKey<V>(m: ReadonlyMap<string, V>): [string, V][] {
  return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

interface SerializeOptions {
  /** Blank output paths and the env vars named after outputs (hash modulo's "mask outputs"). */
  readonly maskOutputs?: boolean;
  /**
   * Replace inputDrvs by this map (hash modulo replaces each input .drv path by the
   * hex of its own hash modulo). Keys are written as given, sorted.
   */
  readonly inputDrvsOverride?: ReadonlyMap<string, readonly string[]>;
}

/** Serializes exactly as Nix's `Derivation::unparse` does. */
export function serializeDerivation(drv: Derivation, opts: SerializeOptions = {}): string {
  const mask = opts.maskOutputs === true;
  const parts: string[] = ['Derive(['];
  parts.push(
    byKey(drv.outputs)
      .map(([name, o]) => `(${str(name)},${str(mask ? '' : o.path)},${str(o.hashAlgo)},${str(o.hash)})`)
      .join(','),
  );
  parts.push('],[');
  parts.push(
    byKey(opts.inputDrvsOverride ?? drv.inputDrvs)
      .map(([p, outs]) => `(${str(p)},[${[...outs].sort().map(str).join(',')}])`)
      .join(','),
  );
  parts.push('],[');
  parts.push([...drv.inputSrcs].sort().map(str).join(','));
  parts.push('],', str(drv.platform), ',', str(drv.builder), ',[', drv.args.map(str).join(','), '],[');
  parts.push(
    byKey(drv.env)
      .map(([k, v]) => `(${str(k)},${str(mask && drv.outputs.has(k) ? '' : v)})`)
      .join(','),
  );
  parts.push('])');
  return parts.join('');
}

import { BuildtraceError } from '../errors.js';
import { serializeDerivation } from './aterm.js';
import { derivationName, outputKind, type Derivation, type DerivationOutput } from './derivation.js';
import { hashDerivationModulo } from './hash-modulo.js';
import { downstreamPlaceholder, makeOutputPath, makeTextPath, parseStorePath, printStorePath, type StorePath } from './store-path.js';

/** Chooses the concrete store path of one output of an input derivation. */
export type InputOutputLookup = (drvPath: string, outputName: string) => string | undefined;

export interface Resolution {
  /** The resolved derivation: no inputDrvs, placeholders rewritten. */
  readonly drv: Derivation;
  /** Its exact ATerm (latin1). */
  readonly aterm: string;
  /** Its text store path: the identity of a build trace. */
  readonly path: StorePath;
  /** Every (input drv, output) that was replaced, with the path chosen for it. */
  readonly chosen: ReadonlyArray<{ readonly drvPath: string; readonly output: string; readonly path: string }>;
}

export function rewriteStrings(s: string, rewrites: ReadonlyArray<readonly [string, string]>): string {
  for (const [from, to] of rewrites) if (s.includes(from)) s = s.split(from).join(to);
  return s;
}

/** Length of a placeholder: "/" and the Nix32 form of a SHA-256. */
const PLACEHOLDER_LENGTH = 53;
const PLACEHOLDER = /^\/[0-9a-df-np-sv-z]{52}$/;

/**
 * rewriteStrings for placeholders only, in one pass: Nix applies each rewrite in turn, but
 * placeholders ("/" + 52 Nix32 characters, which hold no "/") cannot overlap, and a store
 * path put in their place cannot complete another (every "/" in it is followed by a "/" or
 * a "-" within 34 characters), so scanning once from left to right gives the same string.
 * A derivation with hundreds of inputs would otherwise search each string hundreds of times.
 */
export function rewritePlaceholders(s: string, rewrites: ReadonlyMap<string, string>): string {
  let out = '';
  let last = 0;
  for (let i = s.indexOf('/'); i >= 0 && i + PLACEHOLDER_LENGTH <= s.length; ) {
    const to = rewrites.get(s.slice(i, i + PLACEHOLDER_LENGTH));
    if (to === undefined) {
      i = s.indexOf('/', i + 1);
      continue;
    }
    out += s.slice(last, i) + to;
    last = i + PLACEHOLDER_LENGTH;
    i = s.indexOf('/', last);
  }
  return last === 0 ? s : out + s.slice(last);
}

/** The .drv store path of a derivation: text path over its ATerm, referencing inputSrcs and inputDrvs. */
export function derivationStorePath(drv: Derivation, aterm: string | Uint8Array = serializeDerivation(drv), storeDir = '/nix/store'): StorePath {
  const refs = [...drv.inputSrcs, ...drv.inputDrvs.keys()];
  // a string is the ATerm's latin1 text (makeTextPath hashes it as such), bytes are the file
  return makeTextPath(`${derivationName(drv)}.drv`, aterm, refs, storeDir);
}

/**
 * Derivation::tryResolve + rewriteDerivation (Nix 2.8 .. 2.34): replace every input
 * derivation output by its concrete path, rewrite upstream placeholders to those
 * paths, and turn deferred outputs into input-addressed ones. Throws
 * RESOLUTION_FAILED naming the first input output that has no known path.
 */
export function resolveDerivation(drv: Derivation, lookup: InputOutputLookup, storeDir = '/nix/store'): Resolution {
  const name = derivationName(drv);
  const rewrites = new Map<string, string>();
  const inputSrcs = new Set(drv.inputSrcs);
  const chosen: { drvPath: string; output: string; path: string }[] = [];
  for (const [inputDrv, outs] of drv.inputDrvs) {
    const inputDrvPath = parseStorePath(inputDrv, storeDir);
    for (const output of outs) {
      const actual = lookup(inputDrv, output);
      if (actual === undefined) {
        throw new BuildtraceError('RESOLUTION_FAILED', `${name}: no known path for output ${JSON.stringify(output)} of input ${inputDrv}`, {
          subject: inputDrv,
        });
      }
      parseStorePath(actual, storeDir);
      rewrites.set(downstreamPlaceholder(inputDrvPath, output), actual);
      inputSrcs.add(actual);
      chosen.push({ drvPath: inputDrv, output, path: actual });
    }
  }
  // std::map order: rewrites are applied sorted by placeholder.
  const onePass = [...rewrites.keys()].every((k) => PLACEHOLDER.test(k));
  const ordered = onePass ? [] : [...rewrites.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const rewrite = (x: string): string => (rewrites.size === 0 ? x : onePass ? rewritePlaceholders(x, rewrites) : rewriteStrings(x, ordered));
  const env = new Map<string, string>();
  for (const [k, v] of drv.env) env.set(rewrite(k), rewrite(v));
  let resolved: Derivation = {
    outputs: drv.outputs,
    inputDrvs: new Map(),
    inputSrcs: [...inputSrcs].sort(),
    platform: drv.platform,
    builder: rewrite(drv.builder),
    args: drv.args.map(rewrite),
    env,
  };
  const deferred = [...resolved.outputs].filter(([, o]) => outputKind(o) === 'deferred');
  if (deferred.length > 0) {
    const hm = hashDerivationModulo(resolved, true, () => {
      throw new BuildtraceError('RESOLUTION_FAILED', 'a resolved derivation has no input derivations');
    });
    const outputs = new Map<string, DerivationOutput>(resolved.outputs);
    const env2 = new Map(resolved.env);
    for (const [outName] of deferred) {
      const h = hm.hashes.get(outName);
      if (h === undefined) throw new BuildtraceError('RESOLUTION_FAILED', `${name}: no hash for output ${outName}`);
      const p = printStorePath(makeOutputPath(outName, h, name, storeDir));
      outputs.set(outName, { path: p, hashAlgo: '', hash: '' });
      env2.set(outName, p);
    }
    resolved = { ...resolved, outputs, env: env2 };
  }
  const aterm = serializeDerivation(resolved);
  return { drv: resolved, aterm, path: derivationStorePath(resolved, aterm, storeDir), chosen };
}

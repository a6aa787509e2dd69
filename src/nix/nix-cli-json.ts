import { BuildtraceError } from '../errors.js';

/**
 * What `nix` prints, across releases (measured on Debian's 2.8, 2.26 and 2.34; see
 * README "Supported Nix versions"). Pure: no I/O.
 */

export interface NixVersion {
  readonly flavor: 'nix' | 'lix';
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly text: string;
}

/** `nix (Nix) 2.26.3`, `nix (Lix, like Nix) 2.93.0`. */
export function parseNixVersion(text: string): NixVersion {
  const m = /\((Nix|Lix)[^)]*\)\s+(\d+)\.(\d+)(?:\.(\d+))?/i.exec(text);
  if (!m) throw new BuildtraceError('STORE_QUERY_FAILED', `cannot tell the Nix version from ${JSON.stringify(text.trim().slice(0, 80))}`);
  return {
    flavor: (m[1] as string).toLowerCase() === 'lix' ? 'lix' : 'nix',
    major: Number(m[2]),
    minor: Number(m[3]),
    patch: Number(m[4] ?? 0),
    text: `${m[2]}.${m[3]}${m[4] === undefined ? '' : `.${m[4]}`}`,
  };
}

export function nixAtLeast(v: NixVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

/**
 * `<drv>^*` names all outputs of a derivation from Nix 2.13 on (and in every Lix); before,
 * `nix realisation info <drv>` answered with the realisations, later it answers with the
 * `.drv` itself as an opaque path.
 */
export function realisationInstallable(v: NixVersion, drvPath: string): string {
  return v.flavor === 'lix' || nixAtLeast(v, 2, 13) ? `${drvPath}^*` : drvPath;
}

/**
 * `--json-format 1` exists from Nix 2.33 on (2.34 warns that `--json` alone is deprecated).
 * Callers fall back to plain `--json` when Nix says the flag is unknown.
 */
export function pathInfoJsonArgs(v: NixVersion): string[] {
  return v.flavor === 'nix' && nixAtLeast(v, 2, 33) ? ['--json', '--json-format', '1'] : ['--json'];
}

export interface PathInfoJson {
  readonly path: string;
  readonly narHash: string;
  readonly narSize: number;
  readonly references: readonly string[];
  readonly deriver?: string;
  readonly ca?: string;
  readonly signatures?: readonly string[];
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

// Output Nix should not print is the store's failure (STORE_QUERY_FAILED), never a spool
// record's: the daemon then keeps the record and retries instead of rejecting it.
function bad(what: string): BuildtraceError {
  return new BuildtraceError('STORE_QUERY_FAILED', `nix path-info --json: ${what}`);
}

function entry(path: string, e: Record<string, unknown>, storeDir: string | undefined): PathInfoJson {
  const full = (p: unknown, field: string): string => {
    if (typeof p !== 'string') throw bad(`${path}: ${field} is not a string`);
    return storeDir !== undefined && !p.startsWith('/') ? `${storeDir}/${p}` : p;
  };
  const { narHash, narSize, references, deriver, ca, signatures } = e;
  if (typeof narHash !== 'string') throw bad(`${path}: narHash is not a string`);
  if (typeof narSize !== 'number' || !Number.isSafeInteger(narSize) || narSize < 0) throw bad(`${path}: narSize is not a size`);
  if (references !== undefined && !Array.isArray(references)) throw bad(`${path}: references is not a list`);
  return {
    path,
    narHash,
    narSize,
    references: (references ?? []).map((r) => full(r, 'references')),
    ...(typeof deriver === 'string' ? { deriver: full(deriver, 'deriver') } : {}),
    ...(typeof ca === 'string' ? { ca } : {}),
    ...(Array.isArray(signatures) ? { signatures: signatures.filter((s): s is string => typeof s === 'string') } : {}),
  };
}

/**
 * Valid paths from `nix path-info --json` in every shape Nix has printed:
 * - up to 2.18: an array of objects with `path`; a missing path is `{"path":…,"valid":false}`;
 * - 2.19 on (and `--json-format 1`): an object keyed by store path; a missing path is `null`;
 * - `--json-format 2`: `{"version":2,"storeDir":…,"info":{<basename>:…}}` with basenames.
 * Missing paths are left out of the map.
 */
export function parsePathInfoJson(stdout: string): Map<string, PathInfoJson> {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch (err) {
    throw new BuildtraceError('STORE_QUERY_FAILED', `nix path-info --json printed something that is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const out = new Map<string, PathInfoJson>();
  if (Array.isArray(doc)) {
    for (const e of doc) {
      if (!isObject(e) || typeof e['path'] !== 'string') throw bad('an array entry without "path"');
      if (e['valid'] === false) continue;
      out.set(e['path'], entry(e['path'], e, undefined));
    }
    return out;
  }
  if (!isObject(doc)) throw bad('neither an array nor an object');
  if (isObject(doc['info']) && typeof doc['storeDir'] === 'string') {
    const storeDir = doc['storeDir'];
    for (const [base, e] of Object.entries(doc['info'])) {
      if (e === null) continue;
      if (!isObject(e)) throw bad(`${base}: not an object`);
      const path = base.startsWith('/') ? base : `${storeDir}/${base}`;
      out.set(path, entry(path, e, storeDir));
    }
    return out;
  }
  for (const [path, e] of Object.entries(doc)) {
    if (!path.startsWith('/')) continue; // e.g. a top-level "version"
    if (e === null) continue;
    if (!isObject(e)) throw bad(`${path}: not an object`);
    out.set(path, entry(path, e, undefined));
  }
  return out;
}

interface RealisationJson {
  /** Hash modulo of the derivation, lowercase hex. */
  readonly drvHashHex: string;
  readonly output: string;
  readonly outPath: string;
}

/**
 * `nix realisation info --json`: an array of `{"id":"sha256:<hex>!<out>","outPath":…}`
 * (outPath a basename on every release measured; a full path is accepted too). Entries
 * `{"opaquePath":…}` (Nix ≥ 2.13 answering for a plain `.drv`) carry no realisation.
 */
export function parseRealisationsJson(stdout: string, storeDir: string): RealisationJson[] {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch (err) {
    throw new BuildtraceError('STORE_QUERY_FAILED', `nix realisation info --json printed something that is not JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!Array.isArray(doc)) throw new BuildtraceError('STORE_QUERY_FAILED', 'nix realisation info --json: not an array');
  const out: RealisationJson[] = [];
  for (const e of doc) {
    if (!isObject(e)) throw new BuildtraceError('STORE_QUERY_FAILED', 'nix realisation info --json: an entry is not an object');
    if ('opaquePath' in e) continue;
    const id = e['id'];
    const outPath = e['outPath'];
    const m = typeof id === 'string' ? /^sha256:([0-9a-f]{64})!([^/!\s]+)$/.exec(id) : null;
    if (!m || typeof outPath !== 'string')
      throw new BuildtraceError('STORE_QUERY_FAILED', `nix realisation info --json: bad entry ${JSON.stringify(e).slice(0, 200)}`);
    out.push({ drvHashHex: m[1] as string, output: m[2] as string, outPath: outPath.startsWith('/') ? outPath : `${storeDir}/${outPath}` });
  }
  return out;
}

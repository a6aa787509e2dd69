import { BuildtraceError } from '../errors.js';
import { parseHash, type Hash } from './hash.js';
import { parseBaseName, parseStorePath } from './store-path.js';

interface NarInfo {
  readonly storePath: string;
  readonly url: string;
  readonly compression: string;
  readonly fileHash?: Hash;
  readonly fileSize?: number;
  readonly narHash: Hash;
  readonly narSize: number;
  /** Base names, as written. */
  readonly references: readonly string[];
  readonly deriver?: string;
  readonly sigs: readonly string[];
  readonly ca?: string;
}

function fail(msg: string, subject: string): never {
  throw new BuildtraceError('NARINFO_INVALID', `${subject}: ${msg}`, { subject });
}

function int(v: string, field: string, subject: string): number {
  if (!/^[0-9]+$/.test(v)) fail(`${field} is not a non-negative integer`, subject);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) fail(`${field} is too large`, subject);
  return n;
}

/**
 * Parses a .narinfo (src/libstore/nar-info.cc): unknown keys are ignored, as Nix does. The
 * last mile (verify/store-facts.ts) compares its NarHash, NarSize, References and CA with
 * what the verified traces attest.
 */
export function parseNarInfo(text: string, storeDir = '/nix/store', subject = 'narinfo'): NarInfo {
  const fields = new Map<string, string>();
  const sigs: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const sep = line.indexOf(': ');
    if (sep <= 0) fail(`malformed line ${JSON.stringify(line)}`, subject);
    const k = line.slice(0, sep);
    const v = line.slice(sep + 2);
    if (k === 'Sig') {
      sigs.push(v);
      continue;
    }
    if (fields.has(k)) fail(`duplicate field ${k}`, subject);
    fields.set(k, v);
  }
  const need = (k: string): string => fields.get(k) ?? fail(`missing field ${k}`, subject);
  const storePath = need('StorePath');
  parseStorePath(storePath, storeDir);
  const narSize = int(need('NarSize'), 'NarSize', subject);
  if (narSize === 0) fail('NarSize must not be 0', subject);
  const refs = fields.get('References') ?? '';
  const references = refs === '' ? [] : refs.split(' ');
  for (const r of references) parseBaseName(r, storeDir);
  const fileHash = fields.get('FileHash');
  const fileSize = fields.get('FileSize');
  const deriver = fields.get('Deriver');
  const ca = fields.get('CA');
  return {
    storePath,
    url: need('URL'),
    compression: fields.get('Compression') || 'bzip2',
    ...(fileHash !== undefined ? { fileHash: parseHash(fileHash) } : {}),
    ...(fileSize !== undefined ? { fileSize: int(fileSize, 'FileSize', subject) } : {}),
    narHash: parseHash(need('NarHash')),
    narSize,
    references,
    ...(deriver !== undefined && deriver !== 'unknown-deriver' ? { deriver } : {}),
    sigs,
    ...(ca !== undefined ? { ca } : {}),
  };
}

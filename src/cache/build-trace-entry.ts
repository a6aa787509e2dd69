import type { BuildTraceSignature } from '../nix/build-trace.js';
import { CacheError, type CacheBackend } from './backend.js';

/** Bytes of a build-trace-v2 `.doi` entry read before adding a signature ({outPath, signatures}: a few hundred bytes per signer). */
const MAX_DOI_BYTES = 1 << 20;

/**
 * Adds one signature to a build-trace-v2 `.doi` entry: read with a size bound, parsed
 * defensively (`null`, arrays and objects without a string outPath and a signature list are
 * not entries: left untouched, reported), written with a precondition, given up after 20
 * conflicting writes (reported and retried, never silently dropped).
 */
export async function addBuildTraceSignature(cache: CacheBackend, objKey: string, outBase: string, sig: BuildTraceSignature): Promise<void> {
  const maxAttempts = 20;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const cur = await cache.get(objKey, { maxBytes: MAX_DOI_BYTES });
    let value: { outPath: string; signatures: BuildTraceSignature[] } = { outPath: outBase, signatures: [] };
    if (cur) {
      const parsed = parseDoi(cur.body);
      if (!parsed)
        throw new CacheError(
          `${cache.url}/${objKey}: not a build-trace-v2 entry ({"outPath": string, "signatures": [{keyName, sig}]}); left untouched, this builder's signature is not added`,
          true,
          undefined,
          'foreign-object',
        );
      value = parsed;
      if (value.outPath !== outBase || value.signatures.some((s) => s.keyName === sig.keyName && s.sig === sig.sig)) return;
    }
    value = { outPath: value.outPath, signatures: [...value.signatures, sig] };
    if (await cache.putIf(objKey, Buffer.from(JSON.stringify(value)), cur?.etag, 'application/json')) return;
    await new Promise((r) => setTimeout(r, Math.random() * 20 * (attempt + 1)));
  }
  throw new CacheError(`${cache.url}/${objKey}: gave up after ${maxAttempts} conflicting writes (does the server send an ETag for it?)`, false);
}

function parseDoi(body: Buffer): { outPath: string; signatures: BuildTraceSignature[] } | undefined {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as { outPath?: unknown; signatures?: unknown };
  if (typeof o.outPath !== 'string') return undefined;
  const sigs = o.signatures ?? [];
  if (!Array.isArray(sigs)) return undefined;
  const ok = sigs.every(
    (x: unknown) =>
      typeof x === 'object' && x !== null && typeof (x as BuildTraceSignature).keyName === 'string' && typeof (x as BuildTraceSignature).sig === 'string',
  );
  return ok ? { outPath: o.outPath, signatures: sigs as BuildTraceSignature[] } : undefined;
}

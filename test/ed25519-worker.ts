import { createPublicKey } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { ed25519Backend, verifyEd25519, verifyEd25519Async, verifyEd25519ph } from '../src/nix/ed25519.js';

/** Runs the verification rule on test vectors in a thread with its own backend choice (BUILDTRACE_NO_SODIUM in its env). */
export interface VectorCase {
  readonly a: string;
  readonly m: string;
  readonly sig: string;
  readonly ph: boolean;
}

const SPKI = Buffer.from('302a300506032b6570032100', 'hex');

async function results(cases: readonly VectorCase[]): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const c of cases) {
    const a = Buffer.from(c.a, 'hex');
    const m = Buffer.from(c.m, 'hex');
    const s = Buffer.from(c.sig, 'hex');
    if (c.ph) {
      out.push(verifyEd25519ph(a, m, s));
      continue;
    }
    // OpenSSL refuses to import some encodings at all: the rule must refuse them before that matters
    let key: ReturnType<typeof createPublicKey> | undefined;
    try {
      key = createPublicKey({ key: Buffer.concat([SPKI, a]), format: 'der', type: 'spki' });
    } catch {
      key = undefined;
    }
    const sync = key !== undefined && verifyEd25519(a, key, m, s);
    const async = key !== undefined && (await verifyEd25519Async(a, key, m, s));
    if (sync !== async) throw new Error(`inline and libuv-pool verification disagree on ${c.sig}`);
    out.push(sync);
  }
  return out;
}

if (parentPort) {
  const cases = (workerData as { cases: VectorCase[] }).cases;
  results(cases).then((r) => parentPort?.postMessage({ backend: ed25519Backend(), results: r }));
}

import { parentPort, workerData } from 'node:worker_threads';
import { takeEd25519Tally } from '../nix/ed25519.js';
import { publicKeyFromRaw } from '../nix/nix-key.js';
import { checkBundle, type BundleCheck } from '../trace/bundle.js';

/** Checks bundles off the main thread: envelope, Ed25519 / Ed25519ph signature, statement (or a laut JWS). */
const data = workerData as { keys: { name: string; raw: Uint8Array }[]; bytesFor: string[] };
const keys = data.keys.map((k) => publicKeyFromRaw(k.name, k.raw));
const bytesFor = new Set(data.bytesFor);

export type WorkerResult =
  | {
      readonly ok: true;
      readonly keyFingerprint: string;
      readonly statement: Extract<BundleCheck, { ok: true }>['value']['statement'];
      readonly scheme: Extract<BundleCheck, { ok: true }>['value']['scheme'];
      /** For keys whose identity requires per-trace evidence: the exact statement bytes. */
      readonly statementBytes?: Uint8Array;
    }
  | Extract<BundleCheck, { ok: false }>;

parentPort?.on('message', (msg: { id: number; lines: string[] }) => {
  const results: WorkerResult[] = msg.lines.map((line) => {
    const c = checkBundle(line, keys);
    if (!c.ok) return c;
    const fp = c.value.key.fingerprint;
    // the statement's bytes stay here unless per-trace evidence must bind them (a copy: the
    // decoded payload may be a slice of a larger buffer, which a message would copy whole)
    const bytes = bytesFor.has(fp) ? { statementBytes: new Uint8Array(c.value.statementBytes) } : {};
    return { ok: true, keyFingerprint: fp, statement: c.value.statement, scheme: c.value.scheme, ...bytes };
  });
  parentPort?.postMessage({ id: msg.id, results, engines: takeEd25519Tally() });
});

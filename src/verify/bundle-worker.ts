import { parentPort, workerData } from 'node:worker_threads';
import { publicKeyFromRaw } from '../nix/nix-key.js';
import { checkBundle, type BundleCheck } from '../trace/bundle.js';

/** Checks bundles off the main thread: envelope, Ed25519 / Ed25519ph signature, statement (or a laut JWS). */
const keys = (workerData as { keys: { name: string; raw: Uint8Array }[] }).keys.map((k) => publicKeyFromRaw(k.name, k.raw));

export type WorkerResult =
  | {
      readonly ok: true;
      readonly keyFingerprint: string;
      readonly statement: Extract<BundleCheck, { ok: true }>['value']['statement'];
      readonly scheme: Extract<BundleCheck, { ok: true }>['value']['scheme'];
    }
  | Extract<BundleCheck, { ok: false }>;

parentPort?.on('message', (msg: { id: number; lines: string[] }) => {
  const results: WorkerResult[] = msg.lines.map((line) => {
    const c = checkBundle(line, keys);
    // the statement's bytes stay here: the verifier needs only the parsed claim
    return c.ok ? { ok: true, keyFingerprint: c.value.key.fingerprint, statement: c.value.statement, scheme: c.value.scheme } : c;
  });
  parentPort?.postMessage({ id: msg.id, results });
});

/**
 * The floor under trace-verify on a closure: read every `traces/<hash>` object of a file://
 * cache and check each bundle (envelope, Ed25519, statement shape: checkBundle, the code the
 * verifier's workers run), split evenly over one thread per core. No derivation is read, no
 * resolution, verdict or last mile. bench/verify-closure runs it beside trace-verify and
 * `nix store verify`, so the share of the time that any per-trace signature check costs is
 * measured, not guessed.
 *   node dist/bench/signature-floor.js <cache dir> <nix public key>
 * Prints one JSON line: { seconds, bundles }.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { parsePublicKey, type NixPublicKey } from '../src/nix/nix-key.js';
import { checkBundle } from '../src/trace/bundle.js';

function checkAll(lines: readonly string[], keys: readonly NixPublicKey[]): number {
  let ok = 0;
  for (const l of lines) if (checkBundle(l, keys).ok) ok++;
  return ok;
}

if (isMainThread) {
  const [dir, publicKey] = process.argv.slice(2);
  if (dir === undefined || publicKey === undefined) throw new Error('usage: signature-floor <cache dir> <public key>');
  const t0 = process.hrtime.bigint();
  const traces = join(dir, 'traces');
  const lines = readdirSync(traces).flatMap((n) =>
    readFileSync(join(traces, n), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== ''),
  );
  const threads = Math.max(1, availableParallelism());
  const share = Math.ceil(lines.length / threads);
  const others = Array.from({ length: threads - 1 }, (_, i) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { publicKey, lines: lines.slice((i + 1) * share, (i + 2) * share) } });
    return new Promise<number>((resolve, reject) => {
      w.once('message', (n: number) => void w.terminate().then(() => resolve(n)));
      w.once('error', reject);
    });
  });
  const mine = checkAll(lines.slice(0, share), [parsePublicKey(publicKey)]);
  const ok = mine + (await Promise.all(others)).reduce((a, b) => a + b, 0);
  if (ok !== lines.length) throw new Error(`${lines.length - ok} of ${lines.length} bundles did not verify`);
  console.log(JSON.stringify({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, bundles: ok }));
} else {
  const d = workerData as { publicKey: string; lines: string[] };
  parentPort?.postMessage(checkAll(d.lines, [parsePublicKey(d.publicKey)]));
}

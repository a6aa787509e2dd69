/**
 * What laut's profile (Ed25519ph) costs the verifier against our build type (pure Ed25519):
 * the same number of bundles through checkBundle on this thread and through the worker
 * pool trace-verify uses, per scheme, best of 3.
 *   node dist/bench/bundle-schemes.js [--n 5000]
 */
import { generateKeyPairSync } from 'node:crypto';
import { ed25519Backend } from '../src/nix/ed25519.js';
import { parseSecretKey } from '../src/nix/nix-key.js';
import { checkBundle, createBundle, type SignatureScheme } from '../src/trace/bundle.js';
import { buildStatement } from '../src/trace/statement.js';
import { BundlePool } from '../src/verify/bundle-pool.js';

const argv = process.argv.slice(2);
const N = argv.includes('--n') ? Number(argv[argv.indexOf('--n') + 1]) : 5000;

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(16);
const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
const key = parseSecretKey(`bench-1:${Buffer.concat([seed, pub]).toString('base64')}`);

function bundles(laut: boolean, scheme: SignatureScheme): string[] {
  const out: string[] = [];
  for (let i = 0; i < N; i++) {
    const h = i
      .toString(32)
      .padStart(32, '0')
      .replace(/[eotu]/g, '1');
    const st = buildStatement({
      kind: 'ca',
      lautProfile: laut,
      resolvedInputHash: h,
      drvName: `b-${i}`,
      outputs: [
        {
          name: 'out',
          path: `/nix/store/${h}-b-${i}`,
          sha256: 'ab'.repeat(32),
          narSize: 128,
          declared: { hashAlgo: 'r:sha256' },
          castoreEntry: 'CiQSIM8OfLGwH425XlEhfAAWX0J4zgZ1Qz+0dFm7APS9RKEdGDA=',
        },
      ],
      inputs: [],
      keyFingerprint: key.publicKey.fingerprint,
      versions: { buildtrace: '0.1.0', nixVersion: '2.8.0' },
      invocationId: i.toString(16).padStart(32, '0'),
      finishedOn: '2026-12-01T00:00:00.000Z',
    });
    out.push(createBundle(Buffer.from(JSON.stringify(st)), key, scheme));
  }
  return out;
}

async function timePool(lines: string[]): Promise<number> {
  const pool = new BundlePool([key.publicKey]);
  await pool.check(lines[0] as string);
  const t = performance.now();
  const r = await Promise.all(lines.map((l) => pool.check(l)));
  const ms = performance.now() - t;
  await pool.close();
  if (!r.every((c) => c.ok)) throw new Error('a bundle did not verify');
  return ms;
}

function timeInline(lines: string[]): number {
  const t = performance.now();
  for (const l of lines) if (!checkBundle(l, [key.publicKey]).ok) throw new Error('a bundle did not verify');
  return performance.now() - t;
}

const sets = { 'ours (Ed25519)': bundles(false, 'ed25519'), "laut's profile (Ed25519ph)": bundles(true, 'ed25519ph') };
process.stdout.write(`${N} bundles per scheme; Ed25519 backend: ${ed25519Backend()}\n`);
for (const [name, lines] of Object.entries(sets)) {
  const inline = Math.min(timeInline(lines), timeInline(lines), timeInline(lines));
  const pool = Math.min(await timePool(lines), await timePool(lines), await timePool(lines));
  process.stdout.write(
    `${name.padEnd(28)} inline ${((inline / N) * 1000).toFixed(0)} µs/bundle; worker pool ${pool.toFixed(0)} ms (${((pool / N) * 1000).toFixed(0)} µs/bundle)\n`,
  );
}

// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { parseSecretKey } from '../src/nix/nix-key.js';
import { createBundle } from '../src/trace/bundle.js';
import { buildStatement } from '../src/trace/statement.js';
import { BundlePool } from '../src/verify/bundle-pool.js';
import { flipSignature, must, nixEnv } from './helpers.js';

async function signedLine(): Promise<{ line: string; key: ReturnType<typeof parseSecretKey> }> {
  const key = parseSecretKey((await must('nix', ['key', 'generate-secret', '--key-name', 'pool-test-1'], { env: nixEnv() })).stdout);
  const statement = buildStatement({
    kind: 'ia',
    resolvedInputHash: '0'.repeat(32),
    drvName: 'pool-test',
    outputs: [{ name: 'out', path: `/nix/store/${'1'.repeat(32)}-pool-test`, sha256: 'ab'.repeat(32), narSize: 120, declared: {} }],
    inputs: [],
    keyFingerprint: key.publicKey.fingerprint,
    versions: {},
    invocationId: '0'.repeat(32),
    finishedOn: new Date().toISOString(),
  });
  return { line: createBundle(Buffer.from(JSON.stringify(statement)), key), key };
}

test('the worker pool checks bundles like checkBundle does', async () => {
  const { line, key } = await signedLine();
  const pool = new BundlePool([key.publicKey], 2);
  try {
    const [good, tampered, garbage] = await Promise.all([pool.check(line), pool.check(flipSignature(line)), pool.check('{"not":"a bundle"}')]);
    assert.equal(good.ok, true);
    if (good.ok) {
      assert.equal(good.value.key.fingerprint, key.publicKey.fingerprint);
      assert.equal(good.value.statement.resolvedInputHash, '0'.repeat(32));
      assert.equal(good.value.statement.outputs.get('out')?.sha256, 'ab'.repeat(32));
    }
    assert.equal(tampered.ok, false);
    assert.equal(garbage.ok, false);
    if (!tampered.ok) assert.equal(tampered.reason, 'signature-invalid');
  } finally {
    await pool.close();
  }
});

test('a worker that dies fails every pending and later check, instead of leaving them waiting', async () => {
  const { line, key } = await signedLine();
  const pool = new BundlePool([key.publicKey], 1);
  try {
    const pending = Array.from({ length: 200 }, () => pool.check(line));
    await (pool as unknown as { workers: Worker[] }).workers[0]?.terminate();
    const settled = await Promise.allSettled(pending);
    // some may have finished before the worker went; none is left hanging
    const failed = settled.filter((s) => s.status === 'rejected');
    // 200 checks cannot all finish before terminate() lands: some must have been failed by it
    assert.ok(failed.length > 0, 'the worker was terminated with checks pending');
    for (const f of failed) assert.match(String((f as PromiseRejectedResult).reason), /bundle-checking worker stopped/);
    for (const s of settled) if (s.status === 'fulfilled') assert.equal(s.value.ok, true, 'a check that finished is a real verdict');
    await assert.rejects(pool.check(line), /bundle-checking worker stopped/);
  } finally {
    await pool.close();
  }
});

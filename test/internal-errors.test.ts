import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { BuildtraceError, decidedOrThrow, EXIT_INTERNAL, exitCodeFor } from '../src/errors.js';
import { parseSecretKey } from '../src/nix/nix-key.js';
import { checkBundle, createBundle } from '../src/trace/bundle.js';
import { buildStatement } from '../src/trace/statement.js';
import { ROOT, run, runAllowingInternal } from './helpers.js';

/** A Nix secret key made with OpenSSL (no Nix needed): name:base64(seed ‖ public key). */
function secretKey(name: string): ReturnType<typeof parseSecretKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return parseSecretKey(`${name}:${Buffer.concat([seed, pub]).toString('base64')}`);
}

/** Runs runCli (the one exit path of both commands) around a main that ends as `body` says. */
function cliEnding(body: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const runCli = join(ROOT, 'dist/src/util/run-cli.js');
  const errors = join(ROOT, 'dist/src/errors.js');
  const script = `import { runCli } from ${JSON.stringify(runCli)}; import { BuildtraceError } from ${JSON.stringify(errors)};
runCli('probe', async () => { ${body} });`;
  return runAllowingInternal(process.execPath, ['--input-type=module', '-e', script]);
}

test('exit status: a TypeError (a bug) exits 70 with "internal error", never 1 (not verified) or 2 (refused)', async () => {
  const r = await cliEnding('const o = null; return o.x;');
  assert.equal(r.code, EXIT_INTERNAL, r.stderr);
  assert.match(r.stderr, /^probe: internal error \(a bug, not a verdict\): TypeError: /);
  const i = await cliEnding("throw new BuildtraceError('INTERNAL', 'a broken invariant');");
  assert.equal(i.code, EXIT_INTERNAL);
  assert.match(i.stderr, /internal error \(a bug, not a verdict\): INTERNAL: a broken invariant/);
  // an exception thrown from a callback nobody awaits: Node alone would exit 1 ("not verified")
  const u = await cliEnding("setTimeout(() => { throw new RangeError('late'); }, 1); await new Promise((r) => setTimeout(r, 200)); return 0;");
  assert.equal(u.code, EXIT_INTERNAL, u.stderr);
  assert.match(u.stderr, /internal error \(a bug, not a verdict\): RangeError: late/);
});

test('exit status: decided refusals keep theirs (2 usage/input, 1 not found, 3 daemon, 2 operating-system errors)', async () => {
  const cases: [string, number, RegExp][] = [
    ["throw new BuildtraceError('POLICY_INVALID', 'policy: keys[0] is not a key');", 2, /^probe: policy: keys\[0\] is not a key\n$/],
    ["throw new BuildtraceError('NOT_FOUND', 'no trace for x');", 1, /^probe: no trace for x\n$/],
    ["throw new BuildtraceError('DAEMON_NOT_RUNNING', 'no daemon');", 3, /^probe: no daemon\n$/],
    ["const fs = await import('node:fs'); fs.readFileSync('/nonexistent/buildtrace-probe');", 2, /ENOENT/],
  ];
  for (const [body, code, msg] of cases) {
    const r = await cliEnding(body);
    assert.equal(r.code, code, body);
    assert.match(r.stderr, msg, body);
    assert.doesNotMatch(r.stderr, /internal error/);
  }
  assert.equal(exitCodeFor(new TypeError('x')), EXIT_INTERNAL);
  assert.equal(exitCodeFor(new BuildtraceError('BUNDLE_INVALID', 'x')), 2);
});

test("the tests' own runner refuses an internal error whatever exit code a test expected", async () => {
  await assert.rejects(
    run(process.execPath, [
      '--input-type=module',
      '-e',
      `import(${JSON.stringify(join(ROOT, 'dist/src/util/run-cli.js'))}).then((m) => m.runCli('probe', async () => null.x))`,
    ]),
    /internal error \(exit 70\)/,
  );
});

test('decidedOrThrow: a BuildtraceError is a refusal, INTERNAL and anything else is rethrown', () => {
  const e = new BuildtraceError('BUNDLE_INVALID', 'bad');
  assert.equal(decidedOrThrow(e), e);
  assert.throws(() => decidedOrThrow(new TypeError('t')), TypeError);
  assert.throws(() => decidedOrThrow(new BuildtraceError('INTERNAL', 'i')), { code: 'INTERNAL' });
});

test('checkBundle: a bug in its caller surfaces as that exception, never as a "malformed" verdict', () => {
  assert.throws(() => checkBundle(42 as unknown as string, []), TypeError);
});

test('checkBundle on mutated real bundles (both schemes, both build types): a verdict with a known reason, never an exception', () => {
  const k = secretKey('fuzz-a');
  const stmt = (laut: boolean) =>
    Buffer.from(
      JSON.stringify(
        buildStatement({
          kind: 'ca',
          lautProfile: laut,
          resolvedInputHash: `${'0'.repeat(31)}1`,
          drvName: 'fz',
          outputs: [
            {
              name: 'out',
              path: `/nix/store/${'1'.repeat(32)}-fz`,
              sha256: 'ab'.repeat(32),
              narSize: 120,
              declared: { hashAlgo: 'r:sha256' },
              castoreEntry: 'CiQSIM8OfLGwH425XlEhfAAWX0J4zgZ1Qz+0dFm7APS9RKEdGDA=',
            },
          ],
          inputs: [],
          keyFingerprint: k.publicKey.fingerprint,
          versions: { nixFlavor: 'nix', nixVersion: '2.8.0' },
          invocationId: 'c'.repeat(32),
          finishedOn: '2026-12-01T00:00:00.000Z',
        }),
      ),
    );
  const lines = [createBundle(stmt(true), k), createBundle(stmt(false), k)];
  for (const l of lines) assert.equal(checkBundle(l, [k.publicKey]).ok, true, 'the unmutated bundles verify');
  // mutations of the decoded payload too, so statement parsing (not only the envelope) is reached
  const payloadMutated = (line: string, at: number, byte: number): string => {
    const b = JSON.parse(line) as { dsseEnvelope: { payload: string } };
    const p = Buffer.from(b.dsseEnvelope.payload, 'base64');
    p[at % p.length] = byte;
    b.dsseEnvelope.payload = p.toString('base64');
    return JSON.stringify(b);
  };
  const reasons = new Set(['malformed', 'key-not-admitted', 'signature-invalid', 'builder-mismatch', 'replayed']);
  const seen = new Set<string>();
  fc.assert(
    fc.property(fc.nat(1), fc.nat(3), fc.nat(100_000), fc.integer({ min: 0, max: 255 }), (which, mode, at, byte) => {
      const line = lines[which] as string;
      const i = at % line.length;
      const m =
        mode === 0
          ? line.slice(0, i)
          : mode === 1
            ? line.slice(0, i) + String.fromCharCode(byte) + line.slice(i + 1)
            : mode === 2
              ? line.slice(0, i) + line.slice(i + 1)
              : payloadMutated(line, at, byte);
      const c = checkBundle(m, [k.publicKey], { expectedHash: `${'0'.repeat(31)}1` });
      if (!c.ok) {
        assert.ok(reasons.has(c.reason), c.reason);
        seen.add(c.reason);
      }
    }),
    { numRuns: Number(process.env['FUZZ_RUNS'] ?? 2000) },
  );
  // the mutations reached past the envelope: both shape and signature refusals occurred
  assert.ok(seen.has('malformed') && seen.has('signature-invalid'), [...seen].join(','));
});

// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
/**
 * The real Sigstore client on our traces: Debian's cosign (sid 3.1.x, trixie 2.5.x; CI runs this
 * file in those chroots, where cosign is installed) verifies every bundle of our build type from
 * a real build with the builder's public key as PEM (`trace-verify key to-pem`), with the output's
 * NAR as the artifact (so cosign also checks the subject digest); a changed payload byte, the
 * wrong artifact and an older hex-SPKI keyid are refused by cosign; laut-profile `#ca` bundles
 * (Ed25519ph) are verified by trace-verify, not by cosign's --key path.
 *
 * Without cosign the tests are reported as skipped (and fail where BUILDTRACE_REQUIRE names cosign,
 * as in CI's chroots). To run them on a host that only has the CI chroots: BUILDTRACE_COSIGN_CHROOT=/var/cache/buildtrace-ci/sid-… (files are copied under its /tmp).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  FIXTURES,
  nixBuildWithHook,
  nixEnv,
  run,
  salt,
  sha256HexOf,
  startDaemon,
  tempDir,
  VERIFY_CLI,
  type DaemonHandle,
  requireOrSkip,
  type RunResult,
} from './helpers.js';

interface Cosign {
  /** Where files cosign reads must be (a chroot's /tmp, or a plain temp dir). */
  readonly dir: string;
  readonly run: (args: readonly string[]) => Promise<RunResult>;
  readonly describe: string;
}

/** cosign on PATH, or in the chroot BUILDTRACE_COSIGN_CHROOT names; undefined when neither. */
async function findCosign(): Promise<Cosign | undefined> {
  const root = process.env['BUILDTRACE_COSIGN_CHROOT'];
  if (root) {
    const dir = mkdtempSync(join(root, 'tmp', 'buildtrace-cosign-'));
    const inside = (a: string): string => (a.startsWith(root) ? a.slice(root.length) : a);
    return { dir, run: (args) => run('chroot', [root, 'cosign', ...args.map(inside)]), describe: `cosign in ${root}` };
  }
  if ((await run('sh', ['-c', 'command -v cosign'])).code !== 0) return undefined;
  return { dir: tempDir('buildtrace-cosign-'), run: (args) => run('cosign', args), describe: 'cosign on PATH' };
}

const cosign = await findCosign();
/** Skips the test (reported as skipped) without cosign; where CI requires cosign, fails it instead. */
const haveCosign = (t: { skip: (why: string) => void }): boolean =>
  requireOrSkip(t, 'cosign', cosign !== undefined, "Debian trixie's and sid's cosign; CI's chroots install it");

const IA_BUILD_TYPE = 'https://buildtrace.dev/build-types/nix-input-addressed/v1';

interface Row {
  readonly drvName: string;
  readonly bundle: string;
  readonly buildType: string;
  readonly outputs: { name: string; path: string }[];
}

function rowsOf(dbFile: string): Row[] {
  const db = new Database(dbFile, { readonly: true });
  try {
    return (db.prepare('SELECT id, drv_name, bundle FROM traces ORDER BY id').all() as { id: number; drv_name: string; bundle: string }[]).map((r) => {
      const st = JSON.parse(Buffer.from((JSON.parse(r.bundle) as { dsseEnvelope: { payload: string } }).dsseEnvelope.payload, 'base64').toString('utf8')) as {
        predicate: { buildDefinition: { buildType: string } };
      };
      const outputs = db.prepare('SELECT name, path FROM outputs WHERE trace_id = ? ORDER BY name').all(r.id) as { name: string; path: string }[];
      return { drvName: r.drv_name, bundle: r.bundle, buildType: st.predicate.buildDefinition.buildType, outputs };
    });
  } finally {
    db.close();
  }
}

describe('cosign (Debian) verifies our traces', () => {
  let D: DaemonHandle;
  let rows: Row[] = [];
  let pem = '';
  let trustedRoot = '';
  const nars = new Map<string, string>();
  let n = 0;
  const file = (name: string, text: string | Buffer): string => {
    const p = join(cosign?.dir ?? '', `${n++}-${name}`);
    writeFileSync(p, text);
    return p;
  };
  /** `cosign verify-blob-attestation` with the key and nothing else trusted. */
  const verifyBlob = (bundle: string, artifact: string): Promise<RunResult> =>
    (cosign as Cosign).run([
      'verify-blob-attestation',
      '--key',
      pem,
      '--bundle',
      file('bundle.json', bundle),
      '--type',
      'slsaprovenance1',
      // no Rekor entry, no Fulcio certificate: a Nix key is the only trust; an empty trusted
      // root keeps trixie's cosign from fetching Sigstore's TUF root (it has no network here)
      '--insecure-ignore-tlog=true',
      '--new-bundle-format',
      '--trusted-root',
      trustedRoot,
      artifact,
    ]);
  const ok = (r: RunResult): boolean => r.code === 0 && /Verified OK/.test(r.stdout + r.stderr);

  before(async () => {
    if (!cosign) return;
    D = await startDaemon({ keyName: 'cosign-builder-1' });
    // the demo's closure (input-addressed, deferred IA-on-CA, multi-output, fixed-output) and a
    // CA-on-CA chain whose traces follow laut's #ca profile
    const s = salt();
    const scope = [join(FIXTURES, 'scope.nix'), '--argstr', 'salt', s, '--argstr', 'fodHash', sha256HexOf(`fixed-${s}\n`)];
    const b1 = await nixBuildWithHook(D.spool, [...scope, '-A', 'ia3', '-A', 'deferred', '-A', 'multi', '-A', 'uses-dev', '-A', 'fod']);
    assert.equal(b1.code, 0, b1.stderr);
    const b2 = await nixBuildWithHook(D.spool, [join(FIXTURES, 'laut.nix'), '--argstr', 'salt', s, '-A', 'link']);
    assert.equal(b2.code, 0, b2.stderr);
    const p = await D.cli(['push', '--wait']);
    assert.equal(p.code, 0, p.stdout + p.stderr);
    rows = rowsOf(D.dbFile);
    // the daemon's own key file, its public half as PEM: what a user hands cosign
    const k = await run('node', [VERIFY_CLI, 'key', 'to-pem', D.keys.secretFile]);
    assert.equal(k.code, 0, k.stderr);
    pem = file('builder.pem', k.stdout);
    trustedRoot = file('trusted-root.json', JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1' }));
    // each output's NAR: the artifact whose SHA-256 the statement's subject names
    for (const r of rows)
      for (const o of r.outputs) nars.set(o.path, file('out.nar', execFileSync('nix-store', ['--dump', o.path], { env: nixEnv(), maxBuffer: 64 << 20 })));
  });

  after(async () => {
    await D?.stop();
    if (cosign && process.env['BUILDTRACE_COSIGN_CHROOT']) rmSync(cosign.dir, { recursive: true, force: true });
  });

  test('every bundle of our build type from a real build: "Verified OK" for each output NAR', async (ctx) => {
    if (!haveCosign(ctx)) return;
    const ours = rows.filter((r) => r.buildType === IA_BUILD_TYPE);
    // ia1..3, fod, ca1..3's IA consumers, deferred, multi, uses-dev: at least the input-addressed ones
    assert.ok(ours.length >= 6, `only ${ours.length} bundles of our build type: ${rows.map((r) => r.drvName).join(', ')}`);
    let checked = 0;
    for (const r of ours) {
      for (const o of r.outputs) {
        const v = await verifyBlob(r.bundle, nars.get(o.path) as string);
        assert.ok(ok(v), `${cosign?.describe}: ${r.drvName} (${o.name}) exited ${v.code}: ${v.stdout}${v.stderr}`);
        checked++;
      }
    }
    assert.ok(checked >= ours.length);
  });

  test('a changed payload byte is refused (and by trace-verify: signature-invalid)', async (ctx) => {
    if (!haveCosign(ctx)) return;
    const r = rows.find((x) => x.buildType === IA_BUILD_TYPE && x.outputs.length === 1);
    assert.ok(r);
    const b = JSON.parse(r.bundle) as { dsseEnvelope: { payload: string } };
    const payload = Buffer.from(b.dsseEnvelope.payload, 'base64');
    // a digit of the invocation id: the statement stays valid JSON, only the signature breaks
    const at = payload.indexOf('"invocationId":"') + 16;
    assert.ok(at > 16);
    payload[at] = payload[at] === 0x30 ? 0x31 : 0x30;
    b.dsseEnvelope.payload = payload.toString('base64');
    const tampered = JSON.stringify(b);
    const v = await verifyBlob(tampered, nars.get(r.outputs[0]?.path ?? '') as string);
    assert.notEqual(v.code, 0, v.stdout + v.stderr);
    assert.doesNotMatch(v.stdout + v.stderr, /Verified OK/);
    const t = await run(VERIFY_CLI, ['bundles', '--file', file('tampered.jsonl', `${tampered}\n`), '--key', D.keys.publicFile, '--json']);
    assert.equal(t.code, 1, t.stdout + t.stderr);
    assert.match(t.stdout, /signature-invalid/);
  });

  test('the wrong artifact (another output NAR) is refused', async (ctx) => {
    if (!haveCosign(ctx)) return;
    const ours = rows.filter((x) => x.buildType === IA_BUILD_TYPE && x.outputs.length === 1);
    const [a, b] = ours;
    assert.ok(a && b);
    const v = await verifyBlob(a.bundle, nars.get(b.outputs[0]?.path ?? '') as string);
    assert.notEqual(v.code, 0, v.stdout + v.stderr);
    assert.doesNotMatch(v.stdout + v.stderr, /Verified OK/);
  });

  test('an older bundle with the hex-SPKI keyid: cosign refuses it, trace-verify still verifies it', async (ctx) => {
    if (!haveCosign(ctx)) return;
    const r = rows.find((x) => x.buildType === IA_BUILD_TYPE && x.outputs.length === 1);
    assert.ok(r);
    const spki = (JSON.parse((await run('node', [VERIFY_CLI, 'key', 'to-pem', D.keys.publicFile, '--json'])).stdout) as { spkiSha256: string }).spkiSha256;
    const b = JSON.parse(r.bundle) as { verificationMaterial: { publicKey: { hint: string } }; dsseEnvelope: { signatures: { keyid: string }[] } };
    b.verificationMaterial.publicKey.hint = spki;
    (b.dsseEnvelope.signatures[0] as { keyid: string }).keyid = spki;
    const old = JSON.stringify(b);
    const v = await verifyBlob(old, nars.get(r.outputs[0]?.path ?? '') as string);
    assert.notEqual(v.code, 0, 'cosign accepted a hex-SPKI keyid: the README says it does not');
    assert.match(v.stdout + v.stderr, /threshold|no matching|verify/i);
    const t = await run(VERIFY_CLI, ['bundles', '--file', file('old.jsonl', `${old}\n`), '--key', D.keys.publicFile]);
    assert.equal(t.code, 0, t.stdout + t.stderr);
  });

  test("laut-profile #ca bundles (Ed25519ph): trace-verify verifies them, cosign's --key path does not", async (ctx) => {
    if (!haveCosign(ctx)) return;
    const laut = rows.filter((x) => x.buildType !== IA_BUILD_TYPE);
    assert.ok(laut.length >= 3, `laut-profile bundles: ${laut.map((x) => x.drvName).join(', ')}`);
    for (const r of laut) {
      const t = await run(VERIFY_CLI, ['bundles', '--file', file('ca.jsonl', `${r.bundle}\n`), '--key', D.keys.publicFile]);
      assert.equal(t.code, 0, `${r.drvName}: ${t.stdout}${t.stderr}`);
      const v = await verifyBlob(r.bundle, nars.get(r.outputs[0]?.path ?? '') as string);
      assert.notEqual(v.code, 0, `${r.drvName}: cosign verified an Ed25519ph bundle; update the README's table`);
    }
  });
});

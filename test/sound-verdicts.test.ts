// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { parseSecretKey, spkiFingerprint } from '../src/nix/nix-key.js';
import { keyAttestationPreimage, reportDataFor } from '../src/tee/binding.js';
import { createSimulatedPlatform, pem } from '../src/tee/simulated.js';
import { evidenceToJson } from '../src/verify/sources.js';
import { IN_TOTO_PAYLOAD_TYPE, pae } from '../src/trace/dsse.js';
import { builderId } from '../src/trace/statement.js';
import { FIXTURES, must, nixBuildWithHook, nixEnv, nixKeyPair, run, salt, startDaemon, tempDir, VERIFY_CLI, type DaemonHandle } from './helpers.js';

interface Result {
  verified: boolean;
  problems: { drv: string; code: string; detail: string; where?: string }[];
  lastMile: { unchecked: { path: string }[]; mismatches: { path: string; field: string; where: string }[] } | null;
}

const POOL = ['never', 'always'] as const;

/** #17 classes 4, 5, 7 and 8 on real Nix builds. */
describe('sound verdicts: fixed outputs, weak keys, bounded work per run', () => {
  let A: DaemonHandle;
  let dir: string;
  const drv = new Map<string, string>();
  const out = new Map<string, string>();

  before(async () => {
    dir = tempDir('sound-');
    A = await startDaemon({ keyName: 'sound-a' });
    const args = [join(FIXTURES, 'sound.nix'), '--argstr', 'salt', salt()];
    const attrs = ['flat', 'user'].flatMap((a) => ['-A', a]);
    const drvs = (await must('nix-instantiate', [...args, ...attrs], { env: nixEnv() })).stdout.trim().split('\n');
    drv.set('flat', drvs[0] as string).set('user', drvs[1] as string);
    const b = await nixBuildWithHook(A.spool, [...args, ...attrs]);
    assert.equal(b.code, 0, b.stderr);
    const outs = b.stdout.trim().split('\n');
    out.set('flat', outs[0] as string).set('user', outs[1] as string);
    assert.equal((await A.cli(['push', '--wait'])).code, 0);
  });
  after(async () => {
    await A.stop();
  });

  let n = 0;
  const policyFile = (keys: Record<string, string>, trust: unknown): string => {
    const f = join(dir, `policy-${n++}.json`);
    writeFileSync(f, JSON.stringify({ keys: Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, { publicKey: v }])), trust }));
    return f;
  };
  /** trace-verify --json, inline and on the worker pool: the same exit code and verdict. */
  const verify = async (args: string[]): Promise<{ code: number; stderr: string; r?: Result }> => {
    const runs = [];
    for (const mode of POOL) runs.push(await run(VERIFY_CLI, [...args, '--json'], { env: { ...process.env, BUILDTRACE_POOL: mode } }));
    const [inline, pooled] = runs as [Awaited<ReturnType<typeof run>>, Awaited<ReturnType<typeof run>>];
    assert.equal(pooled.code, inline.code, `inline ${inline.code} ${inline.stderr}; pool ${pooled.code} ${pooled.stderr}`);
    assert.equal(pooled.stdout, inline.stdout);
    return { code: inline.code, stderr: inline.stderr, ...(inline.stdout ? { r: JSON.parse(inline.stdout) as Result } : {}) };
  };
  /** A file:// binary cache holding `path` (narinfo as Nix writes it), its narinfo rewritten by `edit`. */
  const binaryCache = async (path: string, edit: (narinfo: string) => string): Promise<string> => {
    const cache = join(dir, `bc-${n++}`);
    await must('nix', ['copy', '--to', `file://${cache}`, path], { env: nixEnv() });
    const f = join(cache, `${path.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`);
    writeFileSync(f, edit(readFileSync(f, 'utf8')));
    return `file://${cache}`;
  };

  test('class 4: a flat fixed output served without CA: is a content mismatch, not unchecked; sources must agree on its NAR', async () => {
    const flat = out.get('flat') as string;
    const pol = policyFile({ A: A.keys.publicKey }, 'A');
    const honest = await binaryCache(flat, (t) => t);
    assert.match(readFileSync(join(honest.slice('file://'.length), `${flat.slice(11, 43)}.narinfo`), 'utf8'), /^CA: fixed:sha256:/m);
    const ok = await verify([drv.get('flat') as string, '--policy', pol, '--cache', honest, '--no-local-store']);
    assert.equal(ok.code, 0, JSON.stringify(ok.r?.problems));
    // the cache drops CA: (an unsigned field): nothing shows the bytes it serves are the declared ones
    const noCa = await binaryCache(flat, (t) => t.replace(/^CA: .*\n/m, ''));
    const v = await verify([drv.get('flat') as string, '--policy', pol, '--cache', noCa, '--no-local-store']);
    assert.equal(v.code, 1, JSON.stringify(v.r?.lastMile));
    assert.ok(
      v.r?.problems.some((p) => p.code === 'content-mismatch' && p.where === noCa && /gives no content address/.test(p.detail)),
      JSON.stringify(v.r?.problems),
    );
    // where a consuming claim lists its NAR hash, that attested hash binds it (checked, no CA needed)
    const used = await verify([drv.get('user') as string, '--policy', pol, '--cache', noCa, '--db', A.dbFile, '--no-local-store']);
    assert.equal(used.code, 0, JSON.stringify(used.r?.problems));
    // CA: kept, another NarHash than the local store's: the two sources are compared
    const narHash = (await must('nix', ['path-info', '--json', flat], { env: nixEnv() })).stdout;
    assert.match(narHash, /narHash/);
    const otherNar = await binaryCache(flat, (t) => t.replace(/^NarHash: sha256:.*$/m, `NarHash: sha256:${'0'.repeat(52)}`));
    const split = await verify([drv.get('flat') as string, '--policy', pol, '--cache', otherNar]);
    assert.equal(split.code, 1, JSON.stringify(split.r?.lastMile));
    assert.ok(
      split.r?.lastMile?.mismatches.some((m) => m.path === flat && m.field === 'narHash'),
      JSON.stringify(split.r?.lastMile),
    );
  });

  test('class 5: a small-order (all-zero) policy key is refused at load at every closure size, so a forgery cannot verify', async () => {
    const zero = Buffer.alloc(32);
    // a forgery for the zero key over a real trace's statement: R = identity, S = 0 verifies
    // (cofactorless) when k = H(R || A || PAE) is a multiple of 4, about one try in four
    const db = new Database(A.dbFile, { readonly: true });
    const row = db.prepare('SELECT rdrv_hash, bundle, statement FROM traces WHERE drv_name = ?').get('sv-user') as {
      rdrv_hash: string;
      bundle: string;
      statement: Buffer;
    };
    db.close();
    const st = JSON.parse(row.statement.toString('utf8')) as { predicate: { runDetails: { builder: { id: string }; metadata: { invocationId: string } } } };
    st.predicate.runDetails.builder.id = builderId(spkiFingerprint(zero));
    const identity = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]);
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let bytes: Buffer;
    for (let i = 0; ; i++) {
      st.predicate.runDetails.metadata.invocationId = createHash('sha256').update(`forged ${i}`).digest('hex').slice(0, 32);
      bytes = Buffer.from(JSON.stringify(st));
      const k = createHash('sha512').update(identity).update(zero).update(pae(IN_TOTO_PAYLOAD_TYPE, bytes)).digest();
      if (([...k].reverse().reduce((a, x) => (a << 8n) | BigInt(x), 0n) % L) % 4n === 0n) break;
    }
    const b = JSON.parse(row.bundle) as {
      verificationMaterial: { publicKey: { hint: string } };
      dsseEnvelope: { payload: string; signatures: { sig: string; keyid: string }[] };
    };
    b.dsseEnvelope.payload = bytes.toString('base64');
    b.dsseEnvelope.signatures = [{ sig: Buffer.concat([identity, Buffer.alloc(32)]).toString('base64'), keyid: spkiFingerprint(zero) }];
    b.verificationMaterial.publicKey.hint = spkiFingerprint(zero);
    const cache = join(dir, 'forged');
    await must('mkdir', ['-p', join(cache, 'traces')]);
    writeFileSync(join(cache, 'traces', row.rdrv_hash), `${JSON.stringify(b)}\n`);
    const pol = policyFile({ zero: `zero-1:${zero.toString('base64')}` }, 'zero');
    // both the inline path (small closures) and the worker pool (large ones)
    const v = await verify([drv.get('user') as string, '--policy', pol, '--cache', `file://${cache}`, '--no-local-store']);
    assert.equal(v.code, 2, JSON.stringify(v.r));
    assert.match(v.stderr, /keys\.zero\.publicKey: refused Ed25519 public key: a point of small order/);
    // the bundles command refuses the key file too
    const keyFile = join(dir, 'zero.pub');
    writeFileSync(keyFile, `zero-1:${zero.toString('base64')}\n`);
    const bundles = await run(VERIFY_CLI, ['bundles', '--file', join(cache, 'traces', row.rdrv_hash), '--key', keyFile]);
    assert.equal(bundles.code, 2, bundles.stdout);
    assert.match(bundles.stderr, /small order/);
  });
  /** A's trace for the `user` derivation: its rdrv hash and bundle line. */
  const userTrace = (): { h: string; bundle: string } => {
    const db = new Database(A.dbFile, { readonly: true });
    const row = db.prepare('SELECT rdrv_hash, bundle FROM traces WHERE drv_name = ?').get('sv-user') as { rdrv_hash: string; bundle: string };
    db.close();
    return { h: row.rdrv_hash, bundle: row.bundle };
  };
  const traceCache = (name: string, lines: readonly string[]): string => {
    const c = join(dir, name);
    mkdirSync(join(c, 'traces'), { recursive: true });
    writeFileSync(join(c, 'traces', userTrace().h), `${lines.join('\n')}\n`);
    return c;
  };
  /** The bundle with its key hint set to `fp` (signature and payload untouched) and `pad` spaces to make the line distinct. */
  const rehint = (line: string, fp: string, pad = 0): string => {
    const b = JSON.parse(line) as { verificationMaterial: { publicKey: { hint: string } }; dsseEnvelope: { signatures: { keyid: string }[] } };
    b.verificationMaterial.publicKey.hint = fp;
    for (const x of b.dsseEnvelope.signatures) x.keyid = fp;
    return `{${' '.repeat(pad)}${JSON.stringify(b).slice(1)}`;
  };

  test("class 7: copies with another admitted key's hint in a cache listed first never crowd out the honest cache's line", async () => {
    const B = await nixKeyPair(dir, 'sound-b');
    const fpB = parseSecretKey(readFileSync(B.secretFile, 'utf8')).publicKey.fingerprint;
    const { bundle } = userTrace();
    const hostile = traceCache(
      'hostile-hints',
      Array.from({ length: 12 }, (_, i) => rehint(bundle, fpB, i)),
    );
    const honest = traceCache('honest', [bundle]);
    const pol = policyFile({ A: A.keys.publicKey, B: B.publicKey }, 'A');
    const v = await verify([drv.get('user') as string, '--policy', pol, '--cache', `file://${hostile}`, '--cache', `file://${honest}`, '--no-local-store']);
    assert.equal(v.code, 0, JSON.stringify(v.r?.problems));
  });

  test('class 8: key hints and failing evidence are bounded per run (exit 2 naming the limit, < 60 s, < 512 MB)', async (t) => {
    const platform = createSimulatedPlatform();
    const roots = join(dir, 'sim-roots');
    mkdirSync(roots, { recursive: true });
    writeFileSync(join(roots, 'ark.pem'), pem(platform.ark));
    writeFileSync(join(roots, 'ask.pem'), pem(platform.ask));
    const pol = join(dir, 'measured-policy.json');
    writeFileSync(
      pol,
      JSON.stringify({
        keys: { A: { publicKey: A.keys.publicKey }, fleet: { tee: { roots, policy: { anyMeasurement: true, anyTcb: true } } } },
        trust: { threshold: 2, of: ['A', 'fleet'] },
      }),
    );
    const { bundle } = userTrace();
    /** A line whose signature names the key `fp` (its bytes random: a distinct signed content each). */
    const junk = (fp: string): string => {
      const b = JSON.parse(rehint(bundle, fp)) as { dsseEnvelope: { signatures: { sig: string }[] } };
      (b.dsseEnvelope.signatures[0] as { sig: string }).sig = randomBytes(64).toString('base64');
      return JSON.stringify(b);
    };
    /** trace-verify under /usr/bin/time: exit code, stderr, peak RSS (KB) and seconds. */
    const timed = async (cache: string): Promise<{ code: number; stderr: string; rssKb: number; seconds: number }> => {
      const r = await run('/usr/bin/time', [
        '-f',
        'rss=%M secs=%e',
        VERIFY_CLI,
        drv.get('user') as string,
        '--policy',
        pol,
        '--cache',
        `file://${cache}`,
        '--no-local-store',
      ]);
      const m = /rss=(\d+) secs=([\d.]+)/.exec(r.stderr);
      assert.ok(m, r.stderr);
      return { code: r.code, stderr: r.stderr, rssKb: Number(m[1]), seconds: Number(m[2]) };
    };

    // (a) every line names another unknown key: each would read and check that key's evidence
    const hints = traceCache('hint-flood', [bundle, ...Array.from({ length: 400 }, () => junk(randomBytes(32).toString('hex')))]);
    const a = await timed(hints);
    assert.equal(a.code, 2, a.stderr);
    assert.match(a.stderr, /limit maxKeyHints \(256 per run\) exceeded.*--max-key-hints/);
    assert.ok(a.seconds < 60 && a.rssKb < 512 * 1024, `${a.seconds} s, ${a.rssKb} KB`);

    // (b) one unknown key, its evidence object flooded: 3,000 lines for other keys (never
    // verified: they do not bind this key) and 300 that bind it but fail verification
    const X = await nixKeyPair(dir, 'sound-x');
    const xKey = parseSecretKey(readFileSync(X.secretFile, 'utf8')).publicKey;
    const cache = traceCache('evidence-flood', [bundle, junk(xKey.fingerprint)]);
    const line = (bind: Uint8Array, reportFor: Buffer, i: number): string =>
      evidenceToJson({
        kind: 'key',
        keyFingerprint: xKey.fingerprint,
        format: 'sev-snp',
        simulated: true,
        collectedAt: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
        report: platform.report(reportDataFor(reportFor)),
        preimage: keyAttestationPreimage(bind, Buffer.alloc(32, 7)),
        certs: [{ role: 'vcek', der: platform.vcek }],
      });
    const other = (await nixKeyPair(dir, 'sound-other')).publicKey;
    const otherRaw = Buffer.from(other.slice(other.indexOf(':') + 1), 'base64');
    const wrongReport = keyAttestationPreimage(otherRaw, Buffer.alloc(32, 1));
    const proto = line(otherRaw, keyAttestationPreimage(otherRaw, Buffer.alloc(32, 7)), 0);
    const lines: string[] = [];
    for (let i = 0; i < 3000; i++)
      lines.push(proto.replace(/"collectedAt":"[^"]*"/, `"collectedAt":"${new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString()}"`));
    for (let i = 0; i < 300; i++) lines.push(line(xKey.raw, wrongReport, i));
    mkdirSync(join(cache, 'buildtrace', 'keys'), { recursive: true });
    writeFileSync(join(cache, 'buildtrace', 'keys', `${xKey.fingerprint}.jsonl`), `${lines.join('\n')}\n`);
    const b = await timed(cache);
    assert.equal(b.code, 2, b.stderr);
    assert.match(b.stderr, /limit maxEvidenceChecks \(256 per run\) exceeded.*--max-evidence-checks/);
    assert.ok(b.seconds < 60 && b.rssKb < 512 * 1024, `${b.seconds} s, ${b.rssKb} KB`);
    t.diagnostic(`hint flood: ${a.seconds} s, ${a.rssKb} KB; evidence flood: ${b.seconds} s, ${b.rssKb} KB`);
    // with the flood gone, the same run is an ordinary verdict: the fleet never signed
    const quiet = traceCache('no-flood', [bundle]);
    const c = await timed(quiet);
    assert.equal(c.code, 1, c.stderr);
  });
});

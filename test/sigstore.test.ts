// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseSecretKey } from '../src/nix/nix-key.js';
import { checkBundle, checkBundleAsync, createBundle } from '../src/trace/bundle.js';
import { buildStatement, type StatementParams } from '../src/trace/statement.js';
import { must, nixEnv } from './helpers.js';

type Json = Record<string, unknown>;

async function key(name: string): Promise<ReturnType<typeof parseSecretKey>> {
  return parseSecretKey((await must('nix', ['key', 'generate-secret', '--key-name', name], { env: nixEnv() })).stdout);
}

function params(k: ReturnType<typeof parseSecretKey>, laut: boolean): StatementParams {
  return {
    kind: 'ca',
    lautProfile: laut,
    resolvedInputHash: `${'0'.repeat(31)}1`,
    drvName: 'sig-test',
    outputs: [
      {
        name: 'out',
        path: `/nix/store/${'1'.repeat(32)}-sig-test`,
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
  };
}

const statementBytes = (p: StatementParams): Buffer => Buffer.from(JSON.stringify(buildStatement(p)));

/** Re-signs an edited statement so only the rule under test can reject it. */
function resign(k: ReturnType<typeof parseSecretKey>, edit: (s: Json) => void, scheme: 'ed25519' | 'ed25519ph' = 'ed25519ph'): string {
  const s = buildStatement(params(k, true)) as Json;
  edit(s);
  return createBundle(Buffer.from(JSON.stringify(s)), k, scheme);
}

describe('Sigstore bundle conformance (protobuf-specs) and the two signature schemes', () => {
  test('laut profile: Ed25519ph over the PAE verifies; the same bundle signed pure Ed25519 does not', async () => {
    const k = await key('sig-a');
    const line = createBundle(statementBytes(params(k, true)), k, 'ed25519ph');
    const c = checkBundle(line, [k.publicKey]);
    assert.ok(c.ok, c.ok ? '' : c.detail);
    assert.equal(c.value.scheme, 'ed25519ph');
    assert.equal(c.value.statement.format, 'laut-slsa');
    assert.equal(c.value.statement.inputsListed, false);
    const pure = createBundle(statementBytes(params(k, true)), k, 'ed25519');
    const p = checkBundle(pure, [k.publicKey]);
    assert.equal(p.ok ? '' : p.reason, 'signature-invalid');
    assert.equal((await checkBundleAsync(line, [k.publicKey])).ok, true);
  });

  test('our build type: pure Ed25519 (what we write) and Ed25519ph both verify; old bundles stay readable', async () => {
    const k = await key('sig-b');
    for (const scheme of ['ed25519', 'ed25519ph'] as const) {
      const c = checkBundle(createBundle(statementBytes(params(k, false)), k, scheme), [k.publicKey]);
      assert.ok(
        c.ok && c.value.scheme === scheme && c.value.statement.format === 'buildtrace' && c.value.statement.inputsListed && c.value.statement.kind === 'ca',
      );
    }
  });

  test('exactly one signature: two, zero or 10,000 signatures are malformed, refused before any crypto', async () => {
    const k = await key('sig-c');
    const line = createBundle(statementBytes(params(k, true)), k, 'ed25519ph');
    const b = JSON.parse(line) as { dsseEnvelope: { signatures: unknown[] } };
    const one = b.dsseEnvelope.signatures[0];
    for (const n of [0, 2, 10_000]) {
      b.dsseEnvelope.signatures = new Array(n).fill(one);
      const t = process.hrtime.bigint();
      const c = checkBundle(JSON.stringify(b), [k.publicKey]);
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      assert.equal(c.ok ? '' : c.reason, 'malformed');
      assert.match(c.ok ? '' : c.detail, new RegExp(`${n} signatures`));
      // 10,000 Ed25519ph checks would take seconds; refusing by count takes a parse
      assert.ok(ms < 1000, `${ms} ms`);
    }
  });

  test('verificationMaterial is required, with a public-key hint equal to the envelope keyid', async () => {
    const k = await key('sig-d');
    const line = createBundle(statementBytes(params(k, true)), k, 'ed25519ph');
    const edit = (f: (b: Json & { verificationMaterial: Json & { publicKey: Json }; dsseEnvelope: { signatures: Json[] } }) => void): string => {
      const b = JSON.parse(line);
      f(b);
      return JSON.stringify(b);
    };
    const cases: [string, string][] = [
      ['no verificationMaterial', edit((b) => delete (b as Json)['verificationMaterial'])],
      ['no publicKey', edit((b) => delete (b.verificationMaterial as Json)['publicKey'])],
      ['hint differs', edit((b) => (b.verificationMaterial.publicKey['hint'] = 'ff'.repeat(32)))],
      ['keyid differs', edit((b) => ((b.dsseEnvelope.signatures[0] as Json)['keyid'] = 'ff'.repeat(32)))],
      ['keyid missing', edit((b) => delete (b.dsseEnvelope.signatures[0] as Json)['keyid'])],
    ];
    for (const [what, l] of cases) {
      const c = checkBundle(l, [k.publicKey]);
      assert.equal(c.ok ? '' : c.reason, 'malformed', what);
    }
    // the hint only orders candidates: the same, consistent, unknown hint in both places still
    // lets the admitted key be tried (it verifies); a key the policy does not admit never does
    const other = edit((b) => {
      b.verificationMaterial.publicKey['hint'] = 'ee'.repeat(32);
      (b.dsseEnvelope.signatures[0] as Json)['keyid'] = 'ee'.repeat(32);
    });
    const c = checkBundle(other, [k.publicKey]);
    assert.ok(c.ok, c.ok ? '' : c.detail);
    const stranger = await key('sig-d-stranger');
    const u = checkBundle(other, [stranger.publicKey]);
    assert.equal(u.ok ? '' : u.reason, 'key-not-admitted');
  });

  test('key hints: we write the SSH fingerprint in both places; SSH, hex-SPKI, empty and unknown hints all verify, and a hint is never identity', async () => {
    const k = await key('hint-a');
    const k2 = await key('hint-b');
    const line = createBundle(statementBytes(params(k, false)), k);
    const b = JSON.parse(line) as { verificationMaterial: { publicKey: { hint: string } }; dsseEnvelope: { signatures: { keyid: string }[] } };
    // SHA256:<unpadded base64 of SHA-256 over the ssh-ed25519 blob>, computed here from the raw key
    const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), Buffer.from(k.publicKey.raw)]);
    const ssh = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
    assert.equal(b.verificationMaterial.publicKey.hint, ssh);
    assert.equal(b.dsseEnvelope.signatures[0]?.keyid, ssh);
    const withHint = (h: string): string => {
      const c = structuredClone(b);
      c.verificationMaterial.publicKey.hint = h;
      (c.dsseEnvelope.signatures[0] as { keyid: string }).keyid = h;
      return JSON.stringify(c);
    };
    const admitted = [k2.publicKey, k.publicKey];
    for (const [what, h] of [
      ['ssh', ssh],
      ['hex SPKI (older bundles)', k.publicKey.fingerprint],
      ['empty', ''],
      ['garbage', 'SHA256:not-a-fingerprint'],
      ['unknown form', 'ed25519:whatever'],
      ["another admitted key's SSH hint", k2.publicKey.sshFingerprint],
      ["another admitted key's hex hint", k2.publicKey.fingerprint],
    ]) {
      for (const c of [checkBundle(withHint(h as string), admitted), await checkBundleAsync(withHint(h as string), admitted)]) {
        assert.ok(c.ok, `${what}: ${c.ok ? '' : c.detail}`);
        // identity is the key whose signature verifies, whatever the hint says
        assert.equal(c.value.key.fingerprint, k.publicKey.fingerprint, what);
      }
    }
    // failure reasons stay what they were: a flipped payload byte under a hint naming the
    // admitted key is signature-invalid; signed by a key nobody admitted, key-not-admitted
    const flipped = structuredClone(b) as unknown as { dsseEnvelope: { payload: string } };
    const payload = Buffer.from(flipped.dsseEnvelope.payload, 'base64');
    payload[payload.length - 5] = (payload[payload.length - 5] ?? 0) ^ 1;
    flipped.dsseEnvelope.payload = payload.toString('base64');
    const f = checkBundle(JSON.stringify(flipped), admitted);
    assert.equal(f.ok ? '' : f.reason, 'signature-invalid');
    const n = checkBundle(line, [k2.publicKey]);
    assert.equal(n.ok ? '' : n.reason, 'key-not-admitted');
  });

  test('property: whatever the (consistent) hint says, the outcome and the signer are those of the empty hint', async () => {
    const k = await key('hint-p');
    const k2 = await key('hint-q');
    const stranger = await key('hint-r');
    const lines = [createBundle(statementBytes(params(k, false)), k), createBundle(statementBytes(params(k, true)), k)];
    const hints = fc.oneof(
      fc.string(),
      fc.constantFrom(
        '',
        k.publicKey.sshFingerprint,
        k.publicKey.fingerprint,
        k2.publicKey.sshFingerprint,
        k2.publicKey.fingerprint,
        stranger.publicKey.sshFingerprint,
      ),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...lines),
        hints,
        fc.constantFrom([k.publicKey, k2.publicKey], [k2.publicKey, k.publicKey], [k2.publicKey], [stranger.publicKey]),
        (line, h, admitted) => {
          const withHint = (x: string): string => {
            const o = JSON.parse(line) as { verificationMaterial: { publicKey: { hint: string } }; dsseEnvelope: { signatures: { keyid: string }[] } };
            o.verificationMaterial.publicKey.hint = x;
            (o.dsseEnvelope.signatures[0] as { keyid: string }).keyid = x;
            return JSON.stringify(o);
          };
          const a = checkBundle(withHint(h), admitted);
          const b = checkBundle(withHint(''), admitted);
          assert.equal(a.ok, b.ok);
          assert.equal(a.ok && b.ok ? a.value.key.fingerprint : 'none', b.ok ? b.value.key.fingerprint : 'none');
          assert.equal(a.ok, admitted.includes(k.publicKey));
        },
      ),
      { numRuns: Number(process.env['FUZZ_RUNS'] ?? 300) },
    );
  });

  test('media types: v0.3 and the legacy 0.1/0.2/0.3 spellings are accepted, others are not', async () => {
    const k = await key('sig-e');
    const line = createBundle(statementBytes(params(k, true)), k, 'ed25519ph');
    const withType = (t: string): string => JSON.stringify({ ...JSON.parse(line), mediaType: t });
    for (const t of [
      'application/vnd.dev.sigstore.bundle.v0.3+json',
      'application/vnd.dev.sigstore.bundle+json;version=0.3',
      'application/vnd.dev.sigstore.bundle+json;version=0.2',
      'application/vnd.dev.sigstore.bundle+json;version=0.1',
    ]) {
      assert.equal(checkBundle(withType(t), [k.publicKey]).ok, true, t);
    }
    for (const t of ['application/vnd.dev.sigstore.bundle.v0.4+json', 'application/json', 'application/vnd.dev.sigstore.bundle+json;version=0.3 ']) {
      const c = checkBundle(withType(t), [k.publicKey]);
      assert.equal(c.ok ? '' : c.reason, 'malformed', t);
    }
  });

  test("laut's profile rules: each violation, correctly signed, is malformed", async () => {
    const k = await key('sig-f');
    type S = Json & {
      subject: (Json & { annotations: Json })[];
      predicate: { buildDefinition: Json & { externalParameters: Json }; runDetails: { metadata: Json; builder: Json } };
    };
    const rules: [string, (s: S) => void][] = [
      ['externalParameters has exactly resolvedInputHash', (s) => (s.predicate.buildDefinition.externalParameters['extra'] = 'x')],
      [
        'no resolvedDependencies',
        (s) => (s.predicate.buildDefinition['resolvedDependencies'] = [{ uri: 'nix-store:/nix/store/x', digest: { sha256: 'ab'.repeat(32) } }]),
      ],
      ['invocationId is 32 lowercase hex', (s) => (s.predicate.runDetails.metadata['invocationId'] = 'C'.repeat(32))],
      ['builder.version values are strings', (s) => (s.predicate.runDetails.builder['version'] = { n: 2 })],
      ['laut_castoreEntry is required', (s) => delete (s.subject[0] as { annotations: Json }).annotations['laut_castoreEntry']],
      ['subject mediaType is the NAR type', (s) => ((s.subject[0] as Json)['mediaType'] = 'application/octet-stream')],
      ['laut_storePath is a store path', (s) => ((s.subject[0] as { annotations: Json }).annotations['laut_storePath'] = '/tmp/x')],
      ['subject names are unique', (s) => s.subject.push(s.subject[0] as S['subject'][number])],
      ['builder.id is the verifying key', (s) => (s.predicate.runDetails.builder['id'] = `urn:laut:builder:sha256:${'ab'.repeat(32)}`)],
    ];
    for (const [rule, edit] of rules) {
      const c = checkBundle(resign(k, edit as (s: Json) => void), [k.publicKey]);
      assert.ok(!c.ok && (c.reason === 'malformed' || c.reason === 'builder-mismatch'), `${rule}: ${c.ok ? 'accepted' : c.reason}`);
    }
    // and unchanged it passes (the edits above are what fails)
    assert.equal(
      checkBundle(
        resign(k, () => {}),
        [k.publicKey],
      ).ok,
      true,
    );
  });
});

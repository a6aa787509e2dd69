import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { subjectDer } from '../src/tee/crl.js';
import { createSimulatedPlatform, pem } from '../src/tee/simulated.js';
import { ROOT, run, tempDir, VERIFY_CLI } from './helpers.js';
import { collateralDir, makeAmdCrl, makeCert, makeCrl, recertifyQuote, resignDoc, sgxExtensionOf } from './tee-tdx-fixture.js';

// Real Intel collateral (go-tdx-guest testing/testdata, June 2023) and real quotes; see SOURCE.
const V = join(ROOT, 'test', 'vectors', 'tdx-collateral');
const REAL = join(V, 'go-tdx-guest');
const INTEL = join(V, 'intel');
const TRUSTEE = join(V, 'quote-trustee.bin');
const SPR = join(V, 'quote-spr.bin');
const AT = '2023-06-20T00:00:00Z'; // inside every collateral document's issueDate..nextUpdate
const TRUSTEE_MRTD = '705ee9381b8633a9fbe532b52345e8433343d2868959f57889d84ca377c395b689cac1599ccea1b7d420483a9ce5f031';

interface Verdict {
  ok: boolean;
  steps: { step: string; ok: boolean | null; detail: string }[];
}

async function evidence(args: string[]): Promise<{ code: number; v: Verdict; stderr: string }> {
  const r = await run(VERIFY_CLI, ['evidence', '--json', ...args]);
  return { code: r.code, v: r.stdout ? (JSON.parse(r.stdout) as Verdict) : { ok: false, steps: [] }, stderr: r.stderr };
}
const step = (v: Verdict, name: string): boolean | null | undefined => v.steps.find((s) => s.step === name)?.ok;
const failing = (v: Verdict): string[] => v.steps.filter((s) => s.ok === false).map((s) => s.step);

function policy(p: unknown): string {
  const f = join(tempDir(), 'tee-policy.json');
  writeFileSync(f, JSON.stringify(p));
  return f;
}
// the trustee quote is from a debug TD: a policy for it must allow debug
const TRUSTEE_POLICY = { allowDebug: true, tdx: { mrTd: [TRUSTEE_MRTD] } };

/** A second, test-only root of trust, pinned next to the real Intel root. */
function otherIntel() {
  const root = makeCert('Intel SGX Root CA', undefined, { ca: true });
  const signing = makeCert('Intel SGX TCB Signing', root, { ca: false });
  const roots = tempDir();
  copyFileSync(join(INTEL, 'sgx-root-ca.pem'), join(roots, 'intel.pem'));
  writeFileSync(join(roots, 'test-root.pem'), pem(root.cert));
  const chain = pem(signing.cert) + pem(root.cert);
  const rootCrl = makeCrl(root, [], new Date('2023-01-01T00:00:00Z'), new Date('2024-01-01T00:00:00Z'));
  return { root, signing, roots, chain, rootCrl };
}

test('TDX collateral: a real quote with real Intel collateral passes every collateral step', async () => {
  const { code, v } = await evidence(['--report', TRUSTEE, '--roots', INTEL, '--collateral', REAL, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.equal(code, 0, JSON.stringify(v.steps, null, 1));
  for (const s of [
    'collateral.signing-chain',
    'collateral.root-crl',
    'collateral.pck-crl',
    'collateral.tcb-info',
    'collateral.qe-identity-signature',
    'collateral.fmspc',
    'collateral.qe-identity',
    'collateral.tcb-status',
  ]) {
    assert.equal(step(v, s), true, s);
  }
  assert.match(v.steps.find((s) => s.step === 'collateral.tcb-status')?.detail ?? '', /UpToDate/);
  assert.match(v.steps.find((s) => s.step === 'collateral.pck-crl')?.detail ?? '', /44 revoked/);
  // the same collateral is stale today: the verifier's time, not the evidence's, decides
  const now = await evidence(['--report', TRUSTEE, '--roots', INTEL, '--collateral', REAL, '--policy', policy(TRUSTEE_POLICY)]);
  assert.equal(now.code, 1);
  assert.ok(failing(now.v).includes('collateral.tcb-info'), failing(now.v).join());
});

test('TDX collateral: the go-tdx-guest SPR quote has a TCB that this TCB info does not support', async () => {
  const { code, v } = await evidence(['--report', SPR, '--roots', INTEL, '--collateral', REAL, '--at', AT, '--policy', policy({ anyMeasurement: true })]);
  assert.equal(code, 1);
  assert.deepEqual(failing(v), ['collateral.tcb-status']);
  assert.match(v.steps.find((s) => s.step === 'collateral.tcb-status')?.detail ?? '', /no TCB level matches/);
  assert.equal(step(v, 'collateral.qe-identity'), true);
});

test('TDX collateral: QE identity mismatch fails at collateral.qe-identity', async () => {
  const o = otherIntel();
  const tcbInfo = resignDoc(readFileSync(join(REAL, 'tcb-info.json'), 'utf8'), 'tcbInfo', o.signing, () => {});
  const same = collateralDir(join(tempDir(), 'c'), REAL, {
    'tcb-info.json': tcbInfo,
    'qe-identity.json': resignDoc(readFileSync(join(REAL, 'qe-identity.json'), 'utf8'), 'enclaveIdentity', o.signing, () => {}),
    'tcb-signing-chain.pem': o.chain,
    'root-crl.der': o.rootCrl,
  });
  // control: the same content under the test root passes, so only the identity decides below
  const ok = await evidence(['--report', TRUSTEE, '--roots', o.roots, '--collateral', same, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.equal(ok.code, 0, JSON.stringify(ok.v.steps, null, 1));
  for (const [what, edit] of [
    // biome-ignore lint/suspicious/noAssignInExpressions: a table of one-line mutations
    ['MRSIGNER', (b: Record<string, unknown>) => void (b['mrsigner'] = 'AB'.repeat(32))],
    // biome-ignore lint/suspicious/noAssignInExpressions: a table of one-line mutations
    ['ISVPRODID', (b: Record<string, unknown>) => void (b['isvprodid'] = 1)],
  ] as const) {
    const dir = collateralDir(join(tempDir(), 'c'), same, {
      'qe-identity.json': resignDoc(readFileSync(join(REAL, 'qe-identity.json'), 'utf8'), 'enclaveIdentity', o.signing, edit),
    });
    const { code, v } = await evidence(['--report', TRUSTEE, '--roots', o.roots, '--collateral', dir, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
    assert.equal(code, 1, what);
    assert.deepEqual(failing(v), ['collateral.qe-identity'], what);
    assert.match(v.steps.find((s) => s.step === 'collateral.qe-identity')?.detail ?? '', new RegExp(what));
  }
});

test('TDX collateral: an out-of-date TCB fails under the default policy, passes where the policy accepts it', async () => {
  const o = otherIntel();
  const dir = collateralDir(join(tempDir(), 'c'), REAL, {
    'tcb-info.json': resignDoc(readFileSync(join(REAL, 'tcb-info.json'), 'utf8'), 'tcbInfo', o.signing, (b) => {
      for (const l of b['tcbLevels'] as { tcbStatus: string; advisoryIDs?: string[] }[]) {
        l.tcbStatus = 'OutOfDate';
        l.advisoryIDs = ['INTEL-SA-00000'];
      }
    }),
    'qe-identity.json': resignDoc(readFileSync(join(REAL, 'qe-identity.json'), 'utf8'), 'enclaveIdentity', o.signing, () => {}),
    'tcb-signing-chain.pem': o.chain,
    'root-crl.der': o.rootCrl,
  });
  const bad = await evidence(['--report', TRUSTEE, '--roots', o.roots, '--collateral', dir, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.equal(bad.code, 1);
  assert.deepEqual(failing(bad.v), ['collateral.tcb-status']);
  assert.match(bad.v.steps.find((s) => s.step === 'collateral.tcb-status')?.detail ?? '', /OutOfDate.*INTEL-SA-00000.*not accepted/);
  const lenient = await evidence([
    '--report',
    TRUSTEE,
    '--roots',
    o.roots,
    '--collateral',
    dir,
    '--at',
    AT,
    '--policy',
    policy({ ...TRUSTEE_POLICY, tdx: { ...TRUSTEE_POLICY.tdx, acceptedTcbStatuses: ['UpToDate', 'OutOfDate'] } }),
  ]);
  assert.equal(lenient.code, 0, JSON.stringify(lenient.v.steps));
});

test('TDX collateral: a revoked PCK certificate fails at collateral.pck-crl', async () => {
  const o = otherIntel();
  const platformCa = makeCert('Intel SGX PCK Platform CA', o.root, { ca: true });
  const quote = readFileSync(TRUSTEE);
  const pck = makeCert('Intel SGX PCK Certificate', platformCa, { ca: false, extensions: [sgxExtensionOf(quote)] });
  const reQuote = join(tempDir(), 'quote.bin');
  writeFileSync(reQuote, recertifyQuote(quote, pck, [pck.cert, platformCa.cert, o.root.cert]));
  const { X509Certificate } = await import('node:crypto');
  const pckSerial = new X509Certificate(pck.cert).serialNumber;
  const base = {
    'tcb-info.json': resignDoc(readFileSync(join(REAL, 'tcb-info.json'), 'utf8'), 'tcbInfo', o.signing, () => {}),
    'qe-identity.json': resignDoc(readFileSync(join(REAL, 'qe-identity.json'), 'utf8'), 'enclaveIdentity', o.signing, () => {}),
    'tcb-signing-chain.pem': o.chain,
    'root-crl.der': o.rootCrl,
  };
  const window = [new Date('2023-06-01T00:00:00Z'), new Date('2023-07-01T00:00:00Z')] as const;
  const good = collateralDir(join(tempDir(), 'c'), REAL, { ...base, 'pck-crl.der': makeCrl(platformCa, ['0badc0de'], ...window) });
  const ok = await evidence(['--report', reQuote, '--roots', o.roots, '--collateral', good, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.equal(ok.code, 0, JSON.stringify(ok.v.steps, null, 1));
  const revoked = collateralDir(join(tempDir(), 'c'), REAL, { ...base, 'pck-crl.der': makeCrl(platformCa, ['0badc0de', pckSerial], ...window) });
  const r = await evidence(['--report', reQuote, '--roots', o.roots, '--collateral', revoked, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.equal(r.code, 1);
  assert.deepEqual(failing(r.v), ['collateral.pck-crl']);
  assert.match(r.v.steps.find((s) => s.step === 'collateral.pck-crl')?.detail ?? '', /is revoked/);
  // a PCK CRL signed by someone else than the PCK's issuer is no CRL at all
  const forged = collateralDir(join(tempDir(), 'c'), REAL, {
    ...base,
    'pck-crl.der': makeCrl(makeCert('Intel SGX PCK Platform CA', o.root, { ca: true }), [], ...window),
  });
  const f = await evidence(['--report', reQuote, '--roots', o.roots, '--collateral', forged, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.deepEqual(failing(f.v), ['collateral.pck-crl']);
  // the root CRL revokes the platform CA
  const rootRevokes = collateralDir(join(tempDir(), 'c'), good, {
    'root-crl.der': makeCrl(o.root, [new X509Certificate(platformCa.cert).serialNumber], ...window),
  });
  const rr = await evidence(['--report', reQuote, '--roots', o.roots, '--collateral', rootRevokes, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.deepEqual(failing(rr.v), ['collateral.root-crl']);
});

test('TDX collateral: collateral signed under another root fails at collateral.signing-chain; tampered collateral at its signature', async () => {
  const o = otherIntel();
  const dir = collateralDir(join(tempDir(), 'c'), REAL, {
    'tcb-info.json': resignDoc(readFileSync(join(REAL, 'tcb-info.json'), 'utf8'), 'tcbInfo', o.signing, () => {}),
    'qe-identity.json': resignDoc(readFileSync(join(REAL, 'qe-identity.json'), 'utf8'), 'enclaveIdentity', o.signing, () => {}),
    'tcb-signing-chain.pem': o.chain,
  });
  const { code, v } = await evidence(['--report', TRUSTEE, '--roots', INTEL, '--collateral', dir, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.equal(code, 1);
  assert.equal(step(v, 'collateral.signing-chain'), false);
  assert.match(v.steps.find((s) => s.step === 'collateral.signing-chain')?.detail ?? '', /not a pinned root/);
  assert.equal(step(v, 'collateral.tcb-info'), false);
  assert.equal(step(v, 'collateral.qe-identity-signature'), false);
  // one changed value in Intel's real TCB info, signature kept
  const text = readFileSync(join(REAL, 'tcb-info.json'), 'utf8').replace('"tcbStatus":"OutOfDate"', '"tcbStatus":"UpToDate"');
  const tampered = collateralDir(join(tempDir(), 'c'), REAL, { 'tcb-info.json': text });
  const t = await evidence(['--report', TRUSTEE, '--roots', INTEL, '--collateral', tampered, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.deepEqual(failing(t.v), ['collateral.tcb-info']);
  assert.match(t.v.steps.find((s) => s.step === 'collateral.tcb-info')?.detail ?? '', /signature does not verify/);
});

test('TDX policy: collateral required unless anyTcb; MRSEAM and minimum TEE_TCB_SVN', async () => {
  const none = await evidence(['--report', TRUSTEE, '--roots', INTEL, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.deepEqual(failing(none.v), ['collateral']);
  const optOut = await evidence(['--report', TRUSTEE, '--roots', INTEL, '--at', AT, '--policy', policy({ ...TRUSTEE_POLICY, anyTcb: true })]);
  assert.equal(optOut.code, 0);
  const strict = await evidence([
    '--report',
    TRUSTEE,
    '--roots',
    INTEL,
    '--collateral',
    REAL,
    '--at',
    AT,
    '--policy',
    policy({ allowDebug: true, tdx: { mrTd: [TRUSTEE_MRTD], mrSeam: ['00'.repeat(48)], minimumTeeTcbSvn: '03000600000000000000000000000000' } }),
  ]);
  assert.deepEqual(failing(strict.v).sort(), ['policy.minimum-tee-tcb-svn', 'policy.mr-seam']);
  const wrongTd = await evidence([
    '--report',
    TRUSTEE,
    '--roots',
    INTEL,
    '--collateral',
    REAL,
    '--at',
    AT,
    '--policy',
    policy({ allowDebug: true, tdx: { mrTd: ['00'.repeat(48)] } }),
  ]);
  assert.deepEqual(failing(wrongTd.v), ['policy.mr-td']);
});

test('policies must name measurements unless they opt out; --at must be a real instant', async () => {
  const noList = await evidence(['--report', TRUSTEE, '--roots', INTEL, '--policy', policy({ allowDebug: true })]);
  assert.equal(noList.code, 2);
  assert.match(noList.stderr, /lists no measurements.*anyMeasurement/);
  const snpNoTcb = await evidence(['--report', TRUSTEE, '--roots', INTEL, '--policy', policy({ snp: { measurements: ['00'.repeat(48)] } })]);
  assert.equal(snpNoTcb.code, 2);
  assert.match(snpNoTcb.stderr, /minimumTcb/);
  const collection = await evidence(['--report', TRUSTEE, '--roots', INTEL, '--policy', policy({ anyMeasurement: true, verificationTime: 'collection' })]);
  assert.equal(collection.code, 2, 'collection time (unsigned) is no longer a verification time');
  for (const at of ['2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', '2026-01-01T24:00:00Z', 'yesterday', '2026-01-01']) {
    const r = await evidence(['--report', TRUSTEE, '--roots', INTEL, '--at', at]);
    assert.equal(r.code, 2, at);
    assert.match(r.stderr, /--at .* is not an RFC 3339 date-time/);
  }
});

test('a roots directory that holds evidence or end-entity certificates is refused', async () => {
  const d = tempDir();
  mkdirSync(join(d, 'ev'));
  copyFileSync(TRUSTEE, join(d, 'ev', 'quote.bin'));
  copyFileSync(join(INTEL, 'sgx-root-ca.pem'), join(d, 'root.pem'));
  const inside = await evidence(['--report', join(d, 'ev', 'quote.bin'), '--roots', d]);
  assert.equal(inside.code, 2);
  assert.match(inside.stderr, /is not a directory of pinned roots/);
  const leafDir = tempDir();
  const o = otherIntel();
  writeFileSync(join(leafDir, 'leaf.pem'), pem(o.signing.cert));
  const leaf = await evidence(['--report', TRUSTEE, '--roots', leafDir]);
  assert.equal(leaf.code, 2);
  assert.match(leaf.stderr, /end-entity certificate/);
});

test('SEV-SNP: AMD CRL from a file (--crl): a revoked ASK or VCEK fails at crl, so does a forged or stale CRL', async () => {
  const { X509Certificate, generateKeyPairSync } = await import('node:crypto');
  const p = createSimulatedPlatform();
  const d = tempDir();
  const roots = join(d, 'roots');
  mkdirSync(roots);
  writeFileSync(join(roots, 'ark.pem'), pem(p.ark));
  writeFileSync(join(roots, 'ask.pem'), pem(p.ask));
  writeFileSync(join(d, 'report.bin'), p.report(Buffer.alloc(64)));
  writeFileSync(join(d, 'vcek.der'), p.vcek);
  const arkName = subjectDer(new X509Certificate(p.ark));
  const now = Date.now();
  const window = [new Date(now - 86_400_000), new Date(now + 86_400_000)] as const;
  const crl = (name: string, der: Buffer): string => {
    writeFileSync(join(d, name), der);
    return join(d, name);
  };
  const check = (c: string) => evidence(['--report', join(d, 'report.bin'), '--vcek', join(d, 'vcek.der'), '--roots', roots, '--crl', c]);
  const clean = await check(crl('clean.crl', makeAmdCrl(arkName, p.arkKey, ['7f'], ...window)));
  assert.equal(clean.code, 0, JSON.stringify(clean.v.steps));
  assert.equal(step(clean.v, 'crl'), true);
  const askRevoked = await check(crl('ask.crl', makeAmdCrl(arkName, p.arkKey, [new X509Certificate(p.ask).serialNumber], ...window)));
  assert.deepEqual(failing(askRevoked.v), ['crl']);
  assert.match(askRevoked.v.steps.find((s) => s.step === 'crl')?.detail ?? '', /SEV-Milan serial .* is revoked/);
  const vcekRevoked = await check(crl('vcek.crl', makeAmdCrl(arkName, p.arkKey, ['00'], ...window)));
  assert.deepEqual(failing(vcekRevoked.v), ['crl'], 'the VCEK has serial 0');
  const forged = await check(crl('forged.crl', makeAmdCrl(arkName, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, [], ...window)));
  assert.match(forged.v.steps.find((s) => s.step === 'crl')?.detail ?? '', /not signed by ARK-Milan/);
  const stale = await check(crl('stale.crl', makeAmdCrl(arkName, p.arkKey, [], new Date(now - 3 * 86_400_000), new Date(now - 2 * 86_400_000))));
  assert.match(stale.v.steps.find((s) => s.step === 'crl')?.detail ?? '', /not current/);
});

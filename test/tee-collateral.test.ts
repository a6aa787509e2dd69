import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { subjectDer } from '../src/tee/crl.js';
import { createSimulatedPlatform, pem } from '../src/tee/simulated.js';
import { ROOT, run, tempDir, VERIFY_CLI } from './helpers.js';
import { collateralDir, makeAmdCrl, makeCert, makeCrl, recertifyQuote, resignDoc, sgxExtensionOf, type TestCa } from './tee-tdx-fixture.js';

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

/**
 * A second, test-only root of trust, pinned next to the real Intel root, with Intel's roles
 * under it: TCB Signing, a PCK Platform CA and a PCK certificate carrying the trustee quote's
 * real SGX extension, and the trustee quote re-certified under that PCK certificate.
 */
function otherIntel() {
  const root = makeCert('Intel SGX Root CA', undefined, { ca: true, pathLen: 1 });
  const signing = makeCert('Intel SGX TCB Signing', root, { ca: false });
  const platformCa = makeCert('Intel SGX PCK Platform CA', root, { ca: true, pathLen: 0 });
  const quote = readFileSync(TRUSTEE);
  const pck = makeCert('Intel SGX PCK Certificate', platformCa, { ca: false, extensions: [sgxExtensionOf(quote)] });
  const reQuote = join(tempDir(), 'quote.bin');
  writeFileSync(reQuote, recertifyQuote(quote, pck, [pck.cert, platformCa.cert, root.cert]));
  const roots = tempDir();
  copyFileSync(join(INTEL, 'sgx-root-ca.pem'), join(roots, 'intel.pem'));
  writeFileSync(join(roots, 'test-root.pem'), pem(root.cert));
  const chain = pem(signing.cert) + pem(root.cert);
  const rootCrl = makeCrl(root, [], new Date('2023-01-01T00:00:00Z'), new Date('2024-01-01T00:00:00Z'));
  const pckCrl = makeCrl(platformCa, ['0badc0de'], new Date('2023-06-01T00:00:00Z'), new Date('2023-07-01T00:00:00Z'));
  const base = {
    'tcb-info.json': resignDoc(readFileSync(join(REAL, 'tcb-info.json'), 'utf8'), 'tcbInfo', signing, () => {}),
    'qe-identity.json': resignDoc(readFileSync(join(REAL, 'qe-identity.json'), 'utf8'), 'enclaveIdentity', signing, () => {}),
    'tcb-signing-chain.pem': chain,
    'root-crl.der': rootCrl,
    'pck-crl.der': pckCrl,
  };
  return { root, signing, platformCa, pck, quote, reQuote, roots, chain, rootCrl, base };
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
  const same = collateralDir(join(tempDir(), 'c'), REAL, o.base);
  // control: the same content under the test root passes, so only the identity decides below
  const ok = await evidence(['--report', o.reQuote, '--roots', o.roots, '--collateral', same, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
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
    const { code, v } = await evidence(['--report', o.reQuote, '--roots', o.roots, '--collateral', dir, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
    assert.equal(code, 1, what);
    assert.deepEqual(failing(v), ['collateral.qe-identity'], what);
    assert.match(v.steps.find((s) => s.step === 'collateral.qe-identity')?.detail ?? '', new RegExp(what));
  }
});

test('TDX collateral: an out-of-date TCB fails under the default policy, passes where the policy accepts it', async () => {
  const o = otherIntel();
  const dir = collateralDir(join(tempDir(), 'c'), REAL, {
    ...o.base,
    'tcb-info.json': resignDoc(readFileSync(join(REAL, 'tcb-info.json'), 'utf8'), 'tcbInfo', o.signing, (b) => {
      for (const l of b['tcbLevels'] as { tcbStatus: string; advisoryIDs?: string[] }[]) {
        l.tcbStatus = 'OutOfDate';
        l.advisoryIDs = ['INTEL-SA-00000'];
      }
    }),
  });
  const bad = await evidence(['--report', o.reQuote, '--roots', o.roots, '--collateral', dir, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.equal(bad.code, 1);
  assert.deepEqual(failing(bad.v), ['collateral.tcb-status']);
  assert.match(bad.v.steps.find((s) => s.step === 'collateral.tcb-status')?.detail ?? '', /OutOfDate.*INTEL-SA-00000.*not accepted/);
  const lenient = await evidence([
    '--report',
    o.reQuote,
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
  const { X509Certificate } = await import('node:crypto');
  const pckSerial = new X509Certificate(o.pck.cert).serialNumber;
  const window = [new Date('2023-06-01T00:00:00Z'), new Date('2023-07-01T00:00:00Z')] as const;
  const good = collateralDir(join(tempDir(), 'c'), REAL, o.base);
  const ok = await evidence(['--report', o.reQuote, '--roots', o.roots, '--collateral', good, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.equal(ok.code, 0, JSON.stringify(ok.v.steps, null, 1));
  const revoked = collateralDir(join(tempDir(), 'c'), REAL, { ...o.base, 'pck-crl.der': makeCrl(o.platformCa, ['0badc0de', pckSerial], ...window) });
  const r = await evidence(['--report', o.reQuote, '--roots', o.roots, '--collateral', revoked, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.equal(r.code, 1);
  assert.deepEqual(failing(r.v), ['collateral.pck-crl']);
  assert.match(r.v.steps.find((s) => s.step === 'collateral.pck-crl')?.detail ?? '', /is revoked/);
  // a PCK CRL signed by someone else than the PCK's issuer is no CRL at all
  const forged = collateralDir(join(tempDir(), 'c'), REAL, {
    ...o.base,
    'pck-crl.der': makeCrl(makeCert('Intel SGX PCK Platform CA', o.root, { ca: true }), [], ...window),
  });
  const f = await evidence(['--report', o.reQuote, '--roots', o.roots, '--collateral', forged, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
  assert.deepEqual(failing(f.v), ['collateral.pck-crl']);
  // the root CRL revokes the platform CA
  const rootRevokes = collateralDir(join(tempDir(), 'c'), good, {
    'root-crl.der': makeCrl(o.root, [new X509Certificate(o.platformCa.cert).serialNumber], ...window),
  });
  const rr = await evidence(['--report', o.reQuote, '--roots', o.roots, '--collateral', rootRevokes, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
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

/** A simulated SEV-SNP platform with its ARK and ASK pinned in `roots`, one report (at `vmpl`) and its VCEK written to `d`. */
function simulatedSnp(vmpl = 0, askWithoutKeyCertSign = false) {
  const p = createSimulatedPlatform({ askWithoutKeyCertSign });
  const d = tempDir();
  const roots = join(d, 'roots');
  mkdirSync(roots);
  writeFileSync(join(roots, 'ark.pem'), pem(p.ark));
  writeFileSync(join(roots, 'ask.pem'), pem(p.ask));
  writeFileSync(join(d, 'report.bin'), p.report(Buffer.alloc(64), { vmpl }));
  writeFileSync(join(d, 'vcek.der'), p.vcek);
  return { p, d, roots, args: ['--report', join(d, 'report.bin'), '--vcek', join(d, 'vcek.der'), '--roots', roots] };
}

test('SEV-SNP: AMD CRL from a file (--crl): a revoked ASK or VCEK fails at crl, so does a forged or stale CRL', async () => {
  const { X509Certificate, generateKeyPairSync } = await import('node:crypto');
  const { p, d, roots } = simulatedSnp();
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
  // The ARK's CRL covers what the ARK issued (the ASK); every VCEK has serial 0 and is issued by
  // the ASK, so a 0 in the ARK's CRL revokes an ARK-issued certificate 0, not the VCEK.
  const vcekSerial = await check(crl('vcek.crl', makeAmdCrl(arkName, p.arkKey, ['00'], ...window)));
  assert.equal(vcekSerial.code, 0, JSON.stringify(vcekSerial.v.steps));
  // a CRL from the ASK is not the ARK's: refused, whatever it lists
  const askName = subjectDer(new X509Certificate(p.ask));
  const fromAsk = await check(crl('from-ask.crl', makeAmdCrl(askName, p.askKey, [], ...window)));
  assert.deepEqual(failing(fromAsk.v), ['crl']);
  assert.match(fromAsk.v.steps.find((s) => s.step === 'crl')?.detail ?? '', /not signed by ARK-Milan/);
  const forged = await check(crl('forged.crl', makeAmdCrl(arkName, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, [], ...window)));
  assert.match(forged.v.steps.find((s) => s.step === 'crl')?.detail ?? '', /not signed by ARK-Milan/);
  const stale = await check(crl('stale.crl', makeAmdCrl(arkName, p.arkKey, [], new Date(now - 3 * 86_400_000), new Date(now - 2 * 86_400_000))));
  assert.match(stale.v.steps.find((s) => s.step === 'crl')?.detail ?? '', /not current/);
});

test('SEV-SNP: without a CRL the verdict says revocation is unchecked; snp.requireCrl makes that a failure', async () => {
  const { args } = simulatedSnp();
  const lax = await evidence([...args, '--policy', policy({ anyMeasurement: true, anyTcb: true })]);
  assert.equal(lax.code, 0, JSON.stringify(lax.v.steps));
  assert.equal(step(lax.v, 'crl'), null);
  assert.match(lax.v.steps.find((s) => s.step === 'crl')?.detail ?? '', /revocation not checked: no AMD CRL/);
  const strict = await evidence([...args, '--policy', policy({ anyMeasurement: true, anyTcb: true, snp: { requireCrl: true } })]);
  assert.equal(strict.code, 1);
  assert.deepEqual(failing(strict.v), ['crl']);
  assert.match(strict.v.steps.find((s) => s.step === 'crl')?.detail ?? '', /requireCrl/);
});

// ---- certificate roles and revocation (Intel QVL PckCertVerifier / TCBSigningChain / PckCrlVerifier; RFC 5280 §6.1.4, §6.3.3)

const at = (quote: string, roots: string, dir: string) =>
  evidence(['--report', quote, '--roots', roots, '--collateral', dir, '--at', AT, '--policy', policy(TRUSTEE_POLICY)]);
const detailOf = (v: Verdict, name: string): string => v.steps.find((s) => s.step === name)?.detail ?? '';
const WINDOW = [new Date('2023-06-01T00:00:00Z'), new Date('2023-07-01T00:00:00Z')] as const;

test('roles: a revoked PCK Platform CA is refused whether or not the quote carries the root', async () => {
  const { X509Certificate } = await import('node:crypto');
  const o = otherIntel();
  const noRoot = join(tempDir(), 'quote-no-root.bin');
  writeFileSync(noRoot, recertifyQuote(o.quote, o.pck, [o.pck.cert, o.platformCa.cert]));
  const good = collateralDir(join(tempDir(), 'c'), REAL, o.base);
  const revoked = collateralDir(join(tempDir(), 'c'), REAL, {
    ...o.base,
    'root-crl.der': makeCrl(o.root, [new X509Certificate(o.platformCa.cert).serialNumber], ...WINDOW),
  });
  for (const [what, quote] of [
    ['with the root', o.reQuote],
    ['without the root', noRoot],
  ] as const) {
    const ok = await at(quote, o.roots, good);
    assert.equal(ok.code, 0, `${what}: ${JSON.stringify(ok.v.steps, null, 1)}`);
    const r = await at(quote, o.roots, revoked);
    assert.equal(r.code, 1, what);
    assert.deepEqual(failing(r.v), ['collateral.root-crl'], what);
    assert.match(detailOf(r.v, 'collateral.root-crl'), /Intel SGX PCK Platform CA serial .* is revoked/, what);
  }
});

test('roles: a revoked TCB Signing certificate is refused whether or not the signing chain carries the root', async () => {
  const { X509Certificate } = await import('node:crypto');
  const o = otherIntel();
  const revokedCrl = makeCrl(o.root, [new X509Certificate(o.signing.cert).serialNumber], ...WINDOW);
  for (const [what, chain] of [
    ['with the root', o.chain],
    ['only itself', pem(o.signing.cert)],
  ] as const) {
    const ok = await at(o.reQuote, o.roots, collateralDir(join(tempDir(), 'c'), REAL, { ...o.base, 'tcb-signing-chain.pem': chain }));
    assert.equal(ok.code, 0, `${what}: ${JSON.stringify(ok.v.steps, null, 1)}`);
    const dir = collateralDir(join(tempDir(), 'c'), REAL, { ...o.base, 'tcb-signing-chain.pem': chain, 'root-crl.der': revokedCrl });
    const r = await at(o.reQuote, o.roots, dir);
    assert.equal(r.code, 1, what);
    assert.deepEqual(failing(r.v), ['collateral.root-crl'], what);
    assert.match(detailOf(r.v, 'collateral.root-crl'), /Intel SGX TCB Signing serial .* is revoked/, what);
  }
});

test('roles: only the TCB Signing certificate, issued by the root, may sign TCB info and QE identity', async () => {
  const o = otherIntel();
  // a cert named "Intel SGX TCB Signing" made with a leaked Platform CA key
  const fakeSigning = makeCert('Intel SGX TCB Signing', o.platformCa, { ca: false });
  for (const [what, signer, chain, why] of [
    ['PCK leaf', o.pck, pem(o.pck.cert) + pem(o.platformCa.cert) + pem(o.root.cert), /3 certificates where a TCB Signing certificate path has 2/],
    ['PCK leaf, chain without the root', o.pck, pem(o.pck.cert) + pem(o.platformCa.cert), /not a pinned root/],
    ['PCK leaf alone', o.pck, pem(o.pck.cert), /not a pinned root/],
    ['Platform CA', o.platformCa, pem(o.platformCa.cert) + pem(o.root.cert), /"Intel SGX PCK Platform CA" where the TCB Signing certificate belongs/],
    ['TCB Signing under the Platform CA', fakeSigning, pem(fakeSigning.cert) + pem(o.platformCa.cert) + pem(o.root.cert), /3 certificates/],
    ['TCB Signing under the Platform CA, no root', fakeSigning, pem(fakeSigning.cert) + pem(o.platformCa.cert), /Platform CA .* not a pinned root/],
  ] as const) {
    const dir = collateralDir(join(tempDir(), 'c'), REAL, {
      ...o.base,
      'tcb-info.json': resignDoc(readFileSync(join(REAL, 'tcb-info.json'), 'utf8'), 'tcbInfo', signer, () => {}),
      'qe-identity.json': resignDoc(readFileSync(join(REAL, 'qe-identity.json'), 'utf8'), 'enclaveIdentity', signer, () => {}),
      'tcb-signing-chain.pem': chain,
    });
    const r = await at(o.reQuote, o.roots, dir);
    assert.equal(r.code, 1, what);
    for (const s of ['collateral.signing-chain', 'collateral.tcb-info', 'collateral.qe-identity-signature']) assert.equal(step(r.v, s), false, `${what}: ${s}`);
    assert.match(detailOf(r.v, 'collateral.signing-chain'), why, what);
  }
});

test('roles: an end-entity certificate acting as a CA is refused (certificates and CRLs), so are CAs without keyCertSign, cRLSign or path length', async () => {
  const o = otherIntel();
  const ext = [sgxExtensionOf(o.quote)];
  const base = collateralDir(join(tempDir(), 'c'), REAL, o.base);
  const quoteUnder = (issuer: TestCa, chain: readonly Buffer[]): { quote: string; pck: TestCa } => {
    const pck = makeCert('Intel SGX PCK Certificate', issuer, { ca: false, extensions: ext });
    const f = join(tempDir(), 'quote.bin');
    writeFileSync(f, recertifyQuote(o.quote, pck, [pck.cert, ...chain]));
    return { quote: f, pck };
  };
  // 1. the leaked PCK key issues a further "PCK certificate"
  const fromLeaf = quoteUnder(o.pck, [o.pck.cert, o.platformCa.cert, o.root.cert]);
  const r1 = await at(fromLeaf.quote, o.roots, base);
  assert.equal(r1.code, 1);
  assert.equal(step(r1.v, 'pck-chain'), false);
  assert.match(detailOf(r1.v, 'pck-chain'), /4 certificates where a PCK certificate path has 3/);
  // 2. intermediates in the Platform CA's place that may not issue certificates
  for (const [what, opts, why] of [
    ['end entity (cA false)', { ca: false }, /is not a CA \(basicConstraints cA false\)/],
    ['no basicConstraints', { ca: false, basicConstraints: false, keyUsage: 0x06 }, /is not a CA \(basicConstraints absent\)/],
    ['CA without keyCertSign', { ca: true, keyUsage: 0x02 }, /lacks keyCertSign/],
    ['CA without keyUsage', { ca: true, keyUsage: null }, /keyUsage is absent/],
  ] as const) {
    const ca = makeCert('Intel SGX PCK Platform CA', o.root, opts);
    for (const chain of [[ca.cert, o.root.cert], [ca.cert]]) {
      const { quote, pck } = quoteUnder(ca, chain);
      const dir = collateralDir(join(tempDir(), 'c'), base, { 'pck-crl.der': makeCrl(ca, [], ...WINDOW) });
      const r = await at(quote, o.roots, dir);
      assert.equal(r.code, 1, what);
      assert.equal(step(r.v, 'pck-chain'), false, what);
      assert.match(detailOf(r.v, 'pck-chain'), why, what);
      void pck;
    }
  }
  // 3. a root that allows no intermediate CA (pathLen 0) above a Platform CA
  const tight = makeCert('Intel SGX Root CA', undefined, { ca: true, pathLen: 0 });
  const tightCa = makeCert('Intel SGX PCK Platform CA', tight, { ca: true });
  writeFileSync(join(o.roots, 'tight-root.pem'), pem(tight.cert));
  const t = quoteUnder(tightCa, [tightCa.cert, tight.cert]);
  const rt = await at(t.quote, o.roots, base);
  assert.match(detailOf(rt.v, 'pck-chain'), /allows 0 CA certificate\(s\) below it \(pathLenConstraint\), the path has 1/);
  // 4. CRLs only from the CA that issued what they cover, and only with cRLSign
  const ownCrl = collateralDir(join(tempDir(), 'c'), base, { 'pck-crl.der': makeCrl(o.pck, [], ...WINDOW) });
  const r4 = await at(o.reQuote, o.roots, ownCrl);
  assert.deepEqual(failing(r4.v), ['collateral.pck-crl']);
  assert.match(detailOf(r4.v, 'collateral.pck-crl'), /not signed by Intel SGX PCK Platform CA/);
  const rootAsPckCrl = collateralDir(join(tempDir(), 'c'), base, { 'pck-crl.der': o.rootCrl });
  const r5 = await at(o.reQuote, o.roots, rootAsPckCrl);
  assert.deepEqual(failing(r5.v), ['collateral.pck-crl'], 'the root CRL does not cover the PCK certificate');
  const noCrlSign = makeCert('Intel SGX PCK Platform CA', o.root, { ca: true, keyUsage: 0x04 });
  const n = quoteUnder(noCrlSign, [noCrlSign.cert, o.root.cert]);
  const r6 = await at(n.quote, o.roots, collateralDir(join(tempDir(), 'c'), base, { 'pck-crl.der': makeCrl(noCrlSign, [], ...WINDOW) }));
  assert.deepEqual(failing(r6.v), ['collateral.pck-crl']);
  assert.match(detailOf(r6.v, 'collateral.pck-crl'), /may not sign CRLs \(keyUsage lacks cRLSign\)/);
});

test('policy: snp.minimumTcb {} and an impossible verificationTime are refused at load, naming the field; unset snp.vmpl requires VMPL 0', async () => {
  const empty = await evidence(['--report', TRUSTEE, '--roots', INTEL, '--policy', policy({ anyMeasurement: true, snp: { minimumTcb: {} } })]);
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /minimumTcb/);
  for (const t of ['2026-02-30T00:00:00Z', '2026-01-01T24:00:00Z']) {
    const r = await evidence(['--report', TRUSTEE, '--roots', INTEL, '--policy', policy({ anyMeasurement: true, verificationTime: t })]);
    assert.equal(r.code, 2, t);
    assert.match(r.stderr, /verificationTime "2026-[^"]*", which is not a real instant/, t);
    assert.doesNotMatch(r.stderr, /Invalid time value/);
  }
  const { args } = simulatedSnp(1);
  const base = { anyMeasurement: true, anyTcb: true };
  const unset = await evidence([...args, '--policy', policy(base)]);
  assert.equal(unset.code, 1);
  assert.deepEqual(failing(unset.v), ['policy.vmpl']);
  assert.match(unset.v.steps.find((s) => s.step === 'policy.vmpl')?.detail ?? '', /VMPL 1, required 0 \(the default/);
  const noPolicy = await evidence(args);
  assert.deepEqual(failing(noPolicy.v), ['policy.vmpl'], 'inspection without a policy requires VMPL 0 too');
  for (const vmpl of ['any', 1] as const) {
    const r = await evidence([...args, '--policy', policy({ ...base, snp: { vmpl } })]);
    assert.equal(r.code, 0, `vmpl ${vmpl}: ${JSON.stringify(r.v.steps)}`);
  }
});

test('roles, AMD: an ASK whose keyUsage lacks keyCertSign is refused (already as a pinned root); a proper one verifies', async () => {
  const { args } = simulatedSnp(0, true);
  const r = await evidence(args);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /ask\.pem is an end-entity certificate \(SEV-Milan\)/);
  const ok = await evidence(simulatedSnp().args);
  assert.equal(ok.code, 0, JSON.stringify(ok.v.steps));
  assert.match(ok.v.steps.find((s) => s.step === 'chain')?.detail ?? '', /VCEK ← SEV-VCEK ← SEV-Milan ← ARK-Milan/);
});

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, run, tempDir, VERIFY_CLI } from './helpers.js';

const V = join(ROOT, 'test', 'vectors', 'tee');
const manifest = JSON.parse(readFileSync(join(V, 'manifest.json'), 'utf8')) as {
  vectors: { id: string; expected: Record<string, unknown>; fields?: Record<string, unknown> }[];
};
const vector = (id: string) => manifest.vectors.find((v) => v.id === id) as { expected: Record<string, unknown>; fields: Record<string, unknown> };

interface Verdict {
  format: string;
  ok: boolean;
  steps: { step: string; ok: boolean | null; detail: string }[];
  fields: Record<string, unknown>;
}

async function evidence(args: string[]): Promise<{ code: number; v: Verdict; stderr: string }> {
  const r = await run(VERIFY_CLI, ['evidence', '--json', ...args]);
  return { code: r.code, v: r.stdout ? (JSON.parse(r.stdout) as Verdict) : ({} as Verdict), stderr: r.stderr };
}

const step = (v: Verdict, name: string) => v.steps.find((s) => s.step === name)?.ok;

const SNP_FIELDS = [
  'version',
  'guest_svn',
  'policy',
  'policy_debug',
  'policy_smt',
  'policy_migrate_ma',
  'vmpl',
  'signature_algo',
  'signing_key',
  'platform_info',
  'family_id',
  'image_id',
  'current_tcb',
  'reported_tcb',
  'reported_tcb_parts',
  'committed_tcb',
  'launch_tcb',
  'current_version',
  'report_data',
  'measurement',
  'host_data',
  'report_id',
  'chip_id',
];

for (const [id, dir] of [
  ['sev-snp/milan-v2-gosev', 'milan-v2-gosev'],
  ['sev-snp/milan-v2-virtee', 'milan-v2-virtee'],
] as const) {
  test(`${id}: fields as the manifest states, every step as expected`, async () => {
    const m = vector(id);
    const { code, v } = await evidence([
      '--report',
      join(V, 'sev-snp', dir, 'report.bin'),
      '--vcek',
      join(V, 'sev-snp', dir, 'vcek.der'),
      '--roots',
      join(V, 'amd'),
      '--at',
      '2026-01-01T00:00:00Z',
    ]);
    assert.equal(v.format, 'sev-snp');
    for (const f of SNP_FIELDS) assert.deepEqual(v.fields[f], m.fields[f], `field ${f}`);
    assert.equal(step(v, 'signature'), m.expected['signature_valid']);
    assert.equal(step(v, 'chain'), m.expected['chain_valid']);
    assert.equal(step(v, 'tcb-binding'), m.expected['reported_tcb_matches_cert']);
    assert.equal(step(v, 'chip-id-binding'), m.expected['chip_id_matches_hwid']);
    assert.equal(step(v, 'validity'), true);
    // the debug vector fails a no-debug policy while its signature passes
    assert.equal(step(v, 'policy.debug'), !m.fields['policy_debug']);
    assert.equal(code, m.fields['policy_debug'] ? 1 : 0);
    assert.equal(v.ok, !m.fields['policy_debug']);
  });
}

test('SNP: the tampered report fails at the signature step only', async () => {
  const { code, v } = await evidence([
    '--report',
    join(V, 'sev-snp/milan-v2-gosev/report-tampered-report_data.bin'),
    '--vcek',
    join(V, 'sev-snp/milan-v2-gosev/vcek.der'),
    '--roots',
    join(V, 'amd'),
  ]);
  assert.equal(code, 1);
  assert.equal(step(v, 'signature'), false);
  assert.equal(step(v, 'chain'), true);
  assert.equal(step(v, 'tcb-binding'), true);
});

test("SNP: a report with another chip's VCEK fails signature and bindings", async () => {
  const { code, v } = await evidence([
    '--report',
    join(V, 'sev-snp/milan-v2-virtee/report.bin'),
    '--vcek',
    join(V, 'sev-snp/milan-v2-gosev/vcek.der'),
    '--roots',
    join(V, 'amd'),
  ]);
  assert.equal(code, 1);
  assert.equal(step(v, 'signature'), false);
  assert.equal(step(v, 'chip-id-binding'), false);
});

for (const n of ['legacy', 'new']) {
  test(`SNP: negative VCEK (${n} hwID encoding) parses and fails the chain`, async () => {
    const { code, v } = await evidence([
      '--report',
      join(V, 'sev-snp/milan-v2-gosev/report.bin'),
      '--vcek',
      join(V, `sev-snp/negative/vcek-invalid-${n}.der`),
      '--roots',
      join(V, 'amd'),
    ]);
    assert.equal(code, 1);
    assert.equal(step(v, 'endorsement-key'), true, 'both hwID encodings parse');
    assert.equal(step(v, 'chain'), false);
    assert.match(v.steps.find((s) => s.step === 'chip-id-binding')?.detail ?? '', /hwID 0001020304050607/);
  });
}

test('SNP: verification time, pinned roots and policy fields', async () => {
  const report = join(V, 'sev-snp/milan-v2-virtee/report.bin');
  const vcek = join(V, 'sev-snp/milan-v2-virtee/vcek.der');
  const m = vector('sev-snp/milan-v2-virtee');
  // after the VCEK's notAfter and before its notBefore
  for (const at of ['2031-01-01T00:00:00Z', '2022-01-01T00:00:00Z']) {
    const { code, v } = await evidence(['--report', report, '--vcek', vcek, '--roots', join(V, 'amd'), '--at', at]);
    assert.equal(code, 1, at);
    assert.equal(step(v, 'validity'), false, at);
    assert.equal(step(v, 'signature'), true);
  }
  // roots of another product only: no chain
  const genoa = await evidence(['--report', report, '--vcek', vcek, '--roots', join(V, 'amd/genoa')]);
  assert.equal(step(genoa.v, 'chain'), false);
  // a VCEK given as --vlek
  const asVlek = await evidence(['--report', report, '--vlek', vcek, '--roots', join(V, 'amd')]);
  assert.equal(step(asVlek.v, 'endorsement-key'), false);

  const dir = tempDir();
  const pol = (p: unknown): string => {
    const f = join(dir, `p${Math.random()}.json`);
    writeFileSync(f, JSON.stringify(p));
    return f;
  };
  const good = await evidence([
    '--report',
    report,
    '--vcek',
    vcek,
    '--roots',
    join(V, 'amd'),
    '--policy',
    pol({
      snp: {
        measurements: [m.fields['measurement']],
        vmpl: 0,
        signingKeys: ['VCEK'],
        reportVersions: [2],
        minimumTcb: { bootloader: 3, snp: 8, microcode: 115 },
      },
      rootFingerprints: ['69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd'],
    }),
  ]);
  assert.equal(good.code, 0, JSON.stringify(good.v.steps));
  const bad = await evidence([
    '--report',
    report,
    '--vcek',
    vcek,
    '--roots',
    join(V, 'amd'),
    '--policy',
    pol({
      snp: { measurements: ['00'.repeat(48)], vmpl: 1, signingKeys: ['VLEK'], reportVersions: [3, 4, 5], minimumTcb: { microcode: 200 } },
      rootFingerprints: ['4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1'],
    }),
  ]);
  assert.equal(bad.code, 1);
  for (const s of ['policy.measurement', 'policy.vmpl', 'policy.signing-key', 'policy.report-version', 'policy.minimum-tcb', 'chain'])
    assert.equal(step(bad.v, s), false, s);
  const debugOk = await evidence([
    '--report',
    join(V, 'sev-snp/milan-v2-gosev/report.bin'),
    '--vcek',
    join(V, 'sev-snp/milan-v2-gosev/vcek.der'),
    '--roots',
    join(V, 'amd'),
    '--policy',
    pol({ allowDebug: true, anyMeasurement: true, anyTcb: true }),
  ]);
  assert.equal(debugOk.code, 0);
  const badPolicy = await evidence(['--report', report, '--vcek', vcek, '--roots', join(V, 'amd'), '--policy', pol({ snp: { vmpl: 9 } })]);
  assert.equal(badPolicy.code, 2);
  assert.match(badPolicy.stderr, /snp\.vmpl/);
});

const TDX_FIELDS = [
  'tee_tcb_svn',
  'mr_seam',
  'td_attributes',
  'xfam',
  'mr_td',
  'mr_config_id',
  'mr_owner',
  'mr_owner_config',
  'rtmr0',
  'rtmr1',
  'rtmr2',
  'rtmr3',
  'report_data',
];

for (const id of ['tdx/v4-trustee', 'tdx/v4-gotdx-spr']) {
  test(`${id}: fields and every step as the manifest states`, async () => {
    const m = vector(id);
    const { code, v } = await evidence(['--report', join(V, id, 'quote.bin'), '--roots', join(V, 'tdx/intel'), '--at', '2026-01-01T00:00:00Z']);
    assert.equal(v.format, 'tdx');
    for (const f of TDX_FIELDS) assert.equal(v.fields[f], m.fields[f], f);
    assert.equal(step(v, 'quote-signature'), m.expected['quote_signature_valid']);
    assert.equal(step(v, 'qe-report-signature'), m.expected['qe_report_signature_valid']);
    assert.equal(step(v, 'qe-report-data-binding'), m.expected['qe_report_data_binds_attestation_key']);
    assert.equal(step(v, 'pck-chain'), m.expected['pck_chain_valid']);
    assert.equal(v.fields['td_debug'], m.expected['td_debug']);
    assert.equal(v.fields['trailing_bytes'], m.expected['trailing_bytes_after_signature_data']);
    assert.equal(step(v, 'policy.debug'), !m.expected['td_debug']);
    assert.equal(code, m.expected['td_debug'] ? 1 : 0);
  });
}

test('TDX: tampered quote fails at the quote signature; a chain to an unpinned root fails', async () => {
  const t = await evidence(['--report', join(V, 'tdx/v4-trustee/quote-tampered-report_data.bin'), '--roots', join(V, 'tdx/intel')]);
  assert.equal(t.code, 1);
  assert.equal(step(t.v, 'quote-signature'), false);
  assert.equal(step(t.v, 'qe-report-signature'), true);
  assert.equal(step(t.v, 'pck-chain'), true);
  // the quote carries the Intel root itself; it must not be trusted unless pinned
  const u = await evidence(['--report', join(V, 'tdx/v4-gotdx-spr/quote.bin'), '--roots', join(V, 'amd')]);
  assert.equal(u.code, 1);
  assert.equal(step(u.v, 'pck-chain'), false);
});

test('usage and unreadable input exit 2', async () => {
  const r1 = await run(VERIFY_CLI, ['evidence', '--report', '/nonexistent', '--roots', join(V, 'amd')]);
  assert.equal(r1.code, 2);
  assert.match(r1.stderr, /cannot read report/);
  const junk = join(tempDir(), 'junk.bin');
  writeFileSync(junk, 'not evidence');
  const r2 = await run(VERIFY_CLI, ['evidence', '--report', junk, '--roots', join(V, 'amd')]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /neither a SEV-SNP report/);
  const r3 = await run(VERIFY_CLI, ['evidence', '--report', join(V, 'sev-snp/milan-v2-virtee/report.bin'), '--roots', join(V, 'amd')]);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /--vcek/);
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseVekCert } from '../src/tee/amd-cert.js';
import { verifyEvidence } from '../src/tee/evidence.js';
import { loadRoots } from '../src/tee/roots.js';
import { parseSnpReport } from '../src/tee/snp-report.js';
import { parseTdxQuote } from '../src/tee/tdx-quote.js';
import { onlyOwnErrors, ROOT } from './helpers.js';

const V = join(ROOT, 'test', 'vectors', 'tee');
const SNP = readFileSync(join(V, 'sev-snp/milan-v2-virtee/report.bin'));
const VCEK = readFileSync(join(V, 'sev-snp/milan-v2-virtee/vcek.der'));
const TDX = readFileSync(join(V, 'tdx/v4-gotdx-spr/quote.bin'));
const PARSE_RUNS = Number(process.env['TEE_FUZZ_RUNS'] ?? 50_000);

/** Flip, overwrite, cut or extend: the mutations a damaged or hostile file would show. */
function mutator(base: Buffer): fc.Arbitrary<Buffer> {
  return fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 4 }), fc.nat(64)).map(([at, byte, mode, n]) => {
    const b = Buffer.from(base);
    switch (mode) {
      case 0:
        b[at] = byte;
        return b;
      case 1:
        b[at] = (b[at] as number) ^ (1 << (byte & 7));
        return b;
      case 2:
        return b.subarray(0, at);
      case 3:
        return Buffer.concat([b, Buffer.alloc(n, byte)]);
      default:
        // overwrite a length or offset-like u32
        b.writeUInt32LE((byte * 0x01010101) >>> 0, Math.min(at, b.length - 4) & ~3);
        return b;
    }
  });
}

test(`SEV-SNP parser: ${PARSE_RUNS} mutated reports, only typed errors`, () => {
  fc.assert(
    fc.property(mutator(SNP), (b) => onlyOwnErrors(() => parseSnpReport(b))),
    { numRuns: PARSE_RUNS },
  );
});

test(`TDX parser: ${PARSE_RUNS} mutated quotes, only typed errors`, () => {
  // mutations concentrated on the header, body descriptor and signature-data lengths
  fc.assert(
    fc.property(
      mutator(TDX.subarray(0, 1200)).map((h) => Buffer.concat([h, TDX.subarray(1200)])),
      (b) => onlyOwnErrors(() => parseTdxQuote(b)),
    ),
    { numRuns: PARSE_RUNS / 2 },
  );
  fc.assert(
    fc.property(mutator(TDX), (b) => onlyOwnErrors(() => parseTdxQuote(b))),
    { numRuns: PARSE_RUNS / 2 },
  );
});

test('VCEK parser and the full verifier: mutated certificates and evidence never throw untyped errors', () => {
  const roots = loadRoots(join(V, 'amd'));
  const intel = loadRoots(join(V, 'tdx/intel'));
  fc.assert(
    fc.property(mutator(VCEK), (b) => onlyOwnErrors(() => parseVekCert(b))),
    { numRuns: 5000 },
  );
  let accepted = 0;
  fc.assert(
    fc.property(mutator(SNP), mutator(VCEK), (r, c) =>
      onlyOwnErrors(() => {
        if (verifyEvidence({ report: r, vek: c }, roots, {}, new Date('2026-01-01T00:00:00Z')).ok) {
          // only a "mutation" that changed nothing may pass
          assert.ok(r.equals(SNP) && c.equals(VCEK), 'a changed report or certificate was accepted');
          accepted++;
        }
      }),
    ),
    { numRuns: 600 },
  );
  fc.assert(
    fc.property(mutator(TDX), (q) => onlyOwnErrors(() => verifyEvidence({ report: q }, intel, {}))),
    { numRuns: 600 },
  );
  assert.ok(accepted < 60, `almost every mutation is a real change and is rejected (${accepted} accepted unchanged)`);
});

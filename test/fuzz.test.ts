import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseDerivation, serializeDerivation } from '../src/nix/aterm.js';
import type { Derivation } from '../src/nix/derivation.js';
import { parseHash } from '../src/nix/hash.js';
import { parseNarInfo } from '../src/nix/narinfo.js';
import { nix32Decode, nix32Encode } from '../src/nix/nix32.js';
import { rewritePlaceholders, rewriteStrings } from '../src/nix/resolve.js';
import { downstreamPlaceholder, parseStorePath } from '../src/nix/store-path.js';
import { checkBundle } from '../src/trace/bundle.js';
import { parseStrictJson } from '../src/util/strict-json.js';
import { onlyOwnErrors } from './helpers.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 2000);

const SAMPLE =
  'Derive([("dev","/nix/store/0mdqa9w1p6cmli6976v4wi0sw9r4p5pr-x-dev","",""),("out","/nix/store/1mdqa9w1p6cmli6976v4wi0sw9r4p5pr-x","","")],' +
  '[("/nix/store/2mdqa9w1p6cmli6976v4wi0sw9r4p5pr-y.drv",["out"])],["/nix/store/3mdqa9w1p6cmli6976v4wi0sw9r4p5pr-src"],' +
  '"x86_64-linux","/bin/sh",["-c","echo \\"hi\\"\\n"],[("name","x"),("out","/nix/store/1mdqa9w1p6cmli6976v4wi0sw9r4p5pr-x")])';

const bytesStr = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1'));

const derivationArb: fc.Arbitrary<Derivation> = fc
  .record({
    outputs: fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), fc.record({ path: bytesStr, hashAlgo: bytesStr, hash: bytesStr }), { minKeys: 1, maxKeys: 3 }),
    inputDrvs: fc.dictionary(bytesStr, fc.uniqueArray(bytesStr, { maxLength: 3 }), { maxKeys: 3 }),
    inputSrcs: fc.uniqueArray(bytesStr, { maxLength: 4 }),
    platform: bytesStr,
    builder: bytesStr,
    args: fc.array(bytesStr, { maxLength: 4 }),
    env: fc.dictionary(bytesStr, bytesStr, { maxKeys: 5 }),
  })
  .map((r) => ({
    outputs: new Map(Object.entries(r.outputs)),
    inputDrvs: new Map(Object.entries(r.inputDrvs).map(([k, v]) => [k, [...v].sort()])),
    inputSrcs: [...r.inputSrcs].sort(),
    platform: r.platform,
    builder: r.builder,
    args: r.args,
    env: new Map(Object.entries(r.env)),
  }));

test('Nix32 round-trips any bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
      assert.deepEqual(nix32Decode(nix32Encode(b), b.length), b);
    }),
    { numRuns: RUNS },
  );
});

test('ATerm: serialize then parse is the identity on any derivation (arbitrary bytes in strings)', () => {
  fc.assert(
    fc.property(derivationArb, (d) => {
      const text = serializeDerivation(d);
      const back = parseDerivation(text);
      assert.equal(serializeDerivation(back), text);
      assert.deepEqual(
        [...back.env],
        [...d.env].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
      );
    }),
    { numRuns: RUNS },
  );
});

test('ATerm parser: mutated and random input only ever raises ATERM_INVALID', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: SAMPLE.length }), fc.integer({ min: 0, max: 255 }), fc.nat(4), (at, byte, mode) => {
      const mutated =
        mode === 0
          ? SAMPLE.slice(0, at)
          : mode === 1
            ? SAMPLE.slice(0, at) + String.fromCharCode(byte) + SAMPLE.slice(at + 1)
            : mode === 2
              ? SAMPLE.slice(0, at) + String.fromCharCode(byte) + SAMPLE.slice(at)
              : SAMPLE.slice(0, at) + SAMPLE.slice(at + 1);
      onlyOwnErrors(() => parseDerivation(mutated));
    }),
    { numRuns: RUNS * 5 },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (s) => onlyOwnErrors(() => parseDerivation(`Derive(${s}`))),
    { numRuns: RUNS },
  );
});

test('strict JSON agrees with JSON.parse on valid JSON and rejects duplicate keys', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      const text = JSON.stringify(v);
      assert.deepEqual(parseStrictJson(text), JSON.parse(text));
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 100 }), (s) => onlyOwnErrors(() => parseStrictJson(s))),
    { numRuns: RUNS },
  );
  assert.throws(() => parseStrictJson('{"a":1,"a":2}'), { code: 'JSON_INVALID' });
  // the fast path (native parse + colon arithmetic) must never let a repeated key through,
  // whatever colons or \u escapes the strings around it hold
  fc.assert(
    fc.property(
      fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 5 }),
      fc.nat(),
      fc.jsonValue({ maxDepth: 1 }),
      (obj, pick, extra) => {
        const keys = Object.keys(obj);
        const k = keys[pick % keys.length] as string;
        const body = JSON.stringify(obj);
        const dup = `${body.slice(0, -1) + (body.length > 2 ? ',' : '') + JSON.stringify(k)}:${JSON.stringify(extra)}}`;
        assert.throws(() => parseStrictJson(dup), { code: 'JSON_INVALID' });
        const escaped = dup.replace(/:"/, ':"\\u003a');
        assert.throws(() => parseStrictJson(escaped), { code: 'JSON_INVALID' });
      },
    ),
    { numRuns: RUNS },
  );
  assert.throws(() => parseStrictJson('['.repeat(100) + ']'.repeat(100)), { code: 'JSON_INVALID' });
});

test('store path, hash, narinfo and bundle parsers only raise their own errors', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (s) => onlyOwnErrors(() => parseStorePath(`/nix/store/${s}`))),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (s) => {
      onlyOwnErrors(() => {
        const p = parseStorePath(`/nix/store/${s}`);
        assert.ok(!p.name.includes('/') && !p.name.startsWith('.'));
      });
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (s) => onlyOwnErrors(() => parseHash(s))),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom('StorePath', 'URL', 'NarHash', 'NarSize', 'References', 'Sig', 'X'), fc.string({ maxLength: 60 })), { maxLength: 8 }),
      (kv) => onlyOwnErrors(() => parseNarInfo(kv.map(([k, v]) => `${k}: ${v}`).join('\n'))),
    ),
    { numRuns: RUNS },
  );
  // checkBundle reports, it never throws
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (s) => assert.equal(checkBundle(s, []).ok, false)),
    { numRuns: RUNS },
  );
});

test("one-pass placeholder rewriting gives what Nix's rewrite-in-turn gives", () => {
  const nix32 = '0123456789abcdfghijklmnpqrsvwxyz';
  const hashPart = fc.string({ unit: fc.constantFrom(...nix32), minLength: 32, maxLength: 32 });
  const name = fc.string({ unit: fc.constantFrom(...`${nix32}etou-._+?=`), minLength: 1, maxLength: 12 });
  // store dirs made of Nix32 letters are the worst case for a placeholder completed by a path
  const storeDir = fc.constantFrom('/nix/store', '/abc', '/a/b', '/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz');
  fc.assert(
    fc.property(
      storeDir,
      fc.array(fc.tuple(hashPart, name, fc.constantFrom('out', 'dev', 'lib'), hashPart, name), { minLength: 1, maxLength: 6 }),
      fc.array(fc.oneof(fc.nat(20), fc.string({ unit: fc.constantFrom(...`${nix32}/-etou`), maxLength: 60 })), { maxLength: 12 }),
      (dir, inputs, pieces) => {
        const rewrites = new Map<string, string>();
        for (const [h, n, out, h2, n2] of inputs)
          rewrites.set(downstreamPlaceholder({ storeDir: dir, hashPart: h, name: `${n}.drv` }, out), `${dir}/${h2}-${n2}`);
        const keys = [...rewrites.keys()];
        const targets = [...rewrites.values()];
        // placeholders, whole and cut, next to store paths and Nix32 runs
        const s = pieces
          .map((p) => {
            if (typeof p === 'string') return p;
            const k = keys[p % keys.length] as string;
            return p % 4 === 0 ? k : p % 4 === 1 ? k.slice(0, 20 + (p % 30)) : p % 4 === 2 ? (targets[p % targets.length] as string) : k.slice(1);
          })
          .join('');
        const inTurn = rewriteStrings(
          s,
          [...rewrites].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
        );
        assert.equal(rewritePlaceholders(s, rewrites), inTurn);
      },
    ),
    { numRuns: RUNS },
  );
});

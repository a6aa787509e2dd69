import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { SCHEMA_DIR, precompiled, runtimeValidator } from '../src/util/schema.js';
import type { JsonValue } from '../src/util/strict-json.js';

const NAMES = readdirSync(SCHEMA_DIR).filter((n) => n.endsWith('.schema.json'));

// one valid document per schema, mutated below
const SEEDS: Record<string, JsonValue> = {
  'trust-policy.schema.json': {
    keys: { A: { publicKey: 'a-1:AAAA' }, B: { publicKey: 'b-1:BBBB', tee: { roots: 'roots', policy: { allowDebug: false } } } },
    trust: { threshold: 1, of: ['A', { threshold: 2, of: ['A', 'B'] }] },
    maxResolutions: 16,
  },
  'tee-policy.schema.json': { allowDebug: false },
  'daemon-config.schema.json': { signingKeyFile: '/etc/buildtrace/key.sec', caches: [{ url: 'file:///srv/cache' }], batchSize: 100 },
  'spool-record.schema.json': { v: 1, drv: '/nix/store/7kf39nh5dgw2airf6njpy8q6rsnyb4kb-b.drv', outs: ['/nix/store/wgvxv6qv2yhi7p0my93b184b8s79738q-b'] },
};

type Path = (string | number)[];
function paths(v: JsonValue, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(v))
    v.forEach((x, i) => {
      out.push(...paths(x, [...at, i]));
    });
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x as JsonValue, [...at, k]));
  return out;
}
function mutate(v: JsonValue, at: Path, op: 'set' | 'delete' | 'add', value: JsonValue): JsonValue {
  if (at.length === 0) {
    if (op === 'set') return value;
    if (op === 'add' && v !== null && typeof v === 'object' && !Array.isArray(v)) return { ...v, extraField: value };
    return v;
  }
  const [head, ...rest] = at as [string | number, ...Path];
  if (Array.isArray(v)) {
    const copy = [...v];
    if (rest.length === 0 && op === 'delete') copy.splice(head as number, 1);
    else copy[head as number] = mutate(copy[head as number] as JsonValue, rest, op, value);
    return copy;
  }
  const obj = { ...(v as Record<string, JsonValue>) };
  if (rest.length === 0 && op === 'delete') delete obj[head as string];
  else obj[head as string] = mutate(obj[head as string] as JsonValue, rest, op, value);
  return obj;
}

test('the build made a validator for every schema, from its current text', () => {
  assert.ok(NAMES.length >= 4);
  for (const n of NAMES) {
    const text = readFileSync(SCHEMA_DIR + n, 'utf8');
    assert.ok(precompiled(n, text), `${n}: run npm run build`);
    assert.equal(precompiled(n, `${text} `), undefined, `${n}: a validator made from other text is not used`);
  }
});

test('build-time and run-time validators agree, errors included, on mutated documents', () => {
  for (const n of NAMES) {
    const seed = SEEDS[n];
    assert.ok(seed !== undefined, `a seed document for ${n}`);
    const pre = precompiled(n, readFileSync(SCHEMA_DIR + n, 'utf8'));
    const run = runtimeValidator(n);
    assert.ok(pre);
    assert.equal(pre(seed), true, `${n}: the seed is valid`);
    const all = paths(seed);
    let invalid = 0;
    fc.assert(
      fc.property(fc.nat(all.length - 1), fc.constantFrom('set', 'delete', 'add'), fc.jsonValue({ maxDepth: 2 }), (i, op, value) => {
        const doc = mutate(seed, all[i] as Path, op as 'set' | 'delete' | 'add', value as JsonValue);
        const a = pre(doc);
        const b = run(doc);
        if (!a) invalid++;
        assert.equal(a, b);
        const errs = (v: typeof pre): string[] => (v.errors ?? []).map((e) => `${e.instancePath} ${e.keyword} ${e.message ?? ''}`);
        assert.deepEqual(errs(pre), errs(run));
      }),
      { numRuns: 400 },
    );
    assert.ok(invalid > 0, `${n}: some mutations were invalid`);
  }
});

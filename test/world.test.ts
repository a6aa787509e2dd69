import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Entry } from '../src/verify/claims.js';
import type { TrustNode } from '../src/verify/trust-tree.js';
import { decide, type Node } from '../src/verify/world.js';

// The verdict on hand-made claims: the rules of README "Trust semantics" one by one, from the
// attacker's side. (The real-build tests in verify.test.ts cover the same rules end to end.)

const P = (name: string): string => `/nix/store/${name.padEnd(32, '0').slice(0, 32)}-${name}`;
const H = (c: string): string => c.repeat(64).slice(0, 64);

interface Spec {
  udrv: string;
  signer: string;
  rdrv?: string;
  out: [string, string];
  inputs?: Record<string, string>;
  deps?: { drv: string; path: string }[];
}
function entry(s: Spec): Entry {
  return {
    udrv: s.udrv,
    rdrvHash: s.rdrv ?? `r-${s.udrv}`,
    rdrvPath: `/nix/store/${s.rdrv ?? `r-${s.udrv}`}.drv`,
    signer: s.signer,
    where: 'test',
    outputs: new Map([['out', { path: s.out[0], sha256: s.out[1] }]]),
    inputs: new Map(Object.entries(s.inputs ?? {})),
    deps: (s.deps ?? []).map((d) => ({ drv: d.drv, key: `out=${d.path}` })),
  };
}
function run(order: string[], entries: Entry[], trust: TrustNode, maxWorlds = 256) {
  const nodes = new Map<string, Node>(order.map((u) => [u, { drv: u, entries: entries.filter((e) => e.udrv === u) }]));
  return decide({ target: order[order.length - 1] as string, required: ['out'], order, nodes, trust, maxWorlds });
}
const both: TrustNode = { threshold: 2, of: ['A', 'B'] };
const one: TrustNode = { threshold: 1, of: ['A', 'B'] };

/** lib (IA, non-deterministic) and app (embeds lib's path only): #10 item 1. */
function item1(): Entry[] {
  const lib = P('lib');
  const app = P('app');
  return [
    entry({ udrv: 'lib', signer: 'A', out: [lib, H('a')] }),
    entry({ udrv: 'lib', signer: 'B', out: [lib, H('b')] }),
    entry({ udrv: 'app', signer: 'A', out: [app, H('c')], inputs: { [lib]: H('a') }, deps: [{ drv: 'lib', path: lib }] }),
    entry({ udrv: 'app', signer: 'B', out: [app, H('c')], inputs: { [lib]: H('b') }, deps: [{ drv: 'lib', path: lib }] }),
  ];
}

describe('world: claims are pooled only within one consistent world', () => {
  test('#10 item 1: signers who disagree on an input-addressed input are not pooled', () => {
    const r2 = run(['lib', 'app'], item1(), both);
    assert.equal(r2.verified, false);
    assert.ok(r2.problems.some((p) => p.code === 'content-disputed' && p.drv === 'lib'));
    const r1 = run(['lib', 'app'], item1(), one);
    assert.equal(r1.verified, true);
    assert.deepEqual(r1.signers, ['A'], 'the first identity in name order whose own view verifies');
    assert.equal(r1.world[P('lib')]?.narSha256, H('a'));
    assert.equal(r1.world[P('lib')]?.producerDrv, 'lib');
    assert.equal(r1.entries.length, 2);
  });

  test('held content: the world whose disputed contents the consumer holds is tried first (the last mile refuses others)', () => {
    const order = ['lib', 'app'];
    const nodes = new Map<string, Node>(order.map((u) => [u, { drv: u, entries: item1().filter((e) => e.udrv === u) }]));
    const held = (h: string) => decide({ target: 'app', required: ['out'], order, nodes, trust: one, maxWorlds: 256, held: new Map([[P('lib'), h]]) });
    assert.deepEqual([held(H('b')).signers, held(H('b')).world[P('lib')]?.narSha256], [['B'], H('b')]);
    assert.deepEqual([held(H('a')).signers, held(H('a')).world[P('lib')]?.narSha256], [['A'], H('a')]);
    // content no viable world has changes nothing: the last mile then reports the mismatch
    assert.deepEqual(held(H('e')).signers, ['A']);
    // never a way around the policy: under 2-of-2 no world verifies, whatever is held
    assert.equal(decide({ target: 'app', required: ['out'], order, nodes, trust: both, maxWorlds: 256, held: new Map([[P('lib'), H('b')]]) }).verified, false);
  });

  test('a claim that does not mention a disputed path is compatible with either content', () => {
    // C signs app as laut's #ca would (no inputs): it may join either side
    const es = [...item1(), entry({ udrv: 'app', signer: 'C', out: [P('app'), H('c')], deps: [{ drv: 'lib', path: P('lib') }] })];
    const r = run(['lib', 'app'], es, { threshold: 2, of: ['A', 'C'] });
    assert.equal(r.verified, false, 'lib itself has only A');
    const es2 = [...es, entry({ udrv: 'lib', signer: 'C', out: [P('lib'), H('a')] })];
    const r2 = run(['lib', 'app'], es2, { threshold: 2, of: ['A', 'B', 'C'] });
    assert.equal(r2.verified, true);
    assert.deepEqual(r2.signers, ['A', 'C']);
  });

  test('a source (an input no derivation produces) listed with two contents: never pooled', () => {
    const src = P('src');
    const es = [
      entry({ udrv: 'app', signer: 'A', out: [P('app'), H('c')], inputs: { [src]: H('a') } }),
      entry({ udrv: 'app', signer: 'B', out: [P('app'), H('c')], inputs: { [src]: H('b') } }),
    ];
    const r2 = run(['app'], es, both);
    assert.equal(r2.verified, false);
    assert.ok(r2.problems.some((p) => p.code === 'content-disputed' && p.detail.includes(src)));
    const r1 = run(['app'], es, one);
    assert.equal(r1.verified, true);
    assert.equal(r1.world[src]?.narSha256, H('a'));
    assert.equal(r1.world[src]?.producerDrv, undefined);
  });

  test('equivocation: one identity, two claims for one rdrv, counts for nothing there', () => {
    const es = [entry({ udrv: 'lib', signer: 'A', out: [P('lib'), H('a')] }), entry({ udrv: 'lib', signer: 'A', out: [P('lib'), H('e')] })];
    const r = run(['lib'], es, 'A');
    assert.equal(r.verified, false);
    assert.ok(r.problems.some((p) => p.code === 'equivocation' && p.signer === 'A' && p.resolvedDrv === '/nix/store/r-lib.drv'));
    // the same claim twice is one claim
    assert.equal(run(['lib'], [es[0] as Entry, es[0] as Entry], 'A').verified, true);
  });

  test('a CA divergence that converges downstream still verifies 2-of-2 (laut)', () => {
    const es = [
      entry({ udrv: 'c1', signer: 'A', out: [P('c1a'), H('a')] }),
      entry({ udrv: 'c1', signer: 'B', out: [P('c1b'), H('b')] }),
      entry({ udrv: 'c2', signer: 'A', rdrv: 'r2a', out: [P('c2'), H('c')], inputs: { [P('c1a')]: H('a') }, deps: [{ drv: 'c1', path: P('c1a') }] }),
      entry({ udrv: 'c2', signer: 'B', rdrv: 'r2b', out: [P('c2'), H('c')], inputs: { [P('c1b')]: H('b') }, deps: [{ drv: 'c1', path: P('c1b') }] }),
    ];
    const r = run(['c1', 'c2'], es, both);
    assert.equal(r.verified, true, JSON.stringify(r.problems));
    assert.deepEqual(r.signers, ['A', 'B']);
    assert.equal(r.entries.length, 4);
    // #17: each divergent c1 output is one signer's alone: a build input, not an attested output
    assert.deepEqual(Object.keys(r.world), [P('c2')]);
  });

  test("many disputed paths under 1-of-2: each identity's own view is tried first, far past the bound", () => {
    const es: Entry[] = [];
    const order: string[] = [];
    const deps: { drv: string; path: string }[] = [];
    const inA: Record<string, string> = {};
    const inB: Record<string, string> = {};
    for (let i = 0; i < 40; i++) {
      const u = `lib${i}`;
      order.push(u);
      es.push(entry({ udrv: u, signer: 'A', out: [P(u), H('a')] }), entry({ udrv: u, signer: 'B', out: [P(u), H('b')] }));
      deps.push({ drv: u, path: P(u) });
      inA[P(u)] = H('a');
      inB[P(u)] = H('b');
    }
    order.push('app');
    es.push(entry({ udrv: 'app', signer: 'B', out: [P('app'), H('c')], inputs: inB, deps }));
    const r = run(order, es, one, 4);
    assert.equal(r.verified, true, JSON.stringify(r.problems.slice(0, 3)));
    assert.deepEqual(r.signers, ['B']);
    // an app claim that needs a lib0 nobody built has no world: bound-hit, never VERIFIED
    const mixed = { ...inA, [P('lib0')]: H('f') };
    const es2 = es.slice(0, -1).concat(entry({ udrv: 'app', signer: 'B', out: [P('app'), H('c')], inputs: mixed, deps }));
    const r2 = run(order, es2, one, 4);
    assert.equal(r2.verified, false);
    assert.ok(
      r2.problems.some((p) => p.code === 'bound-hit' && /only 4 were tried/.test(p.detail)),
      JSON.stringify(r2.problems.map((p) => p.code)),
    );
  });

  test('a liar among three signers cannot move a 2-of-3 verdict, whatever the order of claims', () => {
    const lib = P('lib');
    const honest = [
      entry({ udrv: 'lib', signer: 'A', out: [lib, H('a')] }),
      entry({ udrv: 'lib', signer: 'B', out: [lib, H('a')] }),
      entry({ udrv: 'app', signer: 'A', out: [P('app'), H('c')], inputs: { [lib]: H('a') }, deps: [{ drv: 'lib', path: lib }] }),
      entry({ udrv: 'app', signer: 'B', out: [P('app'), H('c')], inputs: { [lib]: H('a') }, deps: [{ drv: 'lib', path: lib }] }),
    ];
    const lies = [
      entry({ udrv: 'lib', signer: 'L', out: [lib, H('0')] }),
      entry({ udrv: 'app', signer: 'L', out: [P('app'), H('c')], inputs: { [lib]: H('0') }, deps: [{ drv: 'lib', path: lib }] }),
      entry({ udrv: 'app', signer: 'L', rdrv: 'other', out: [P('app'), H('0')], deps: [{ drv: 'lib', path: lib }] }),
    ];
    const trust: TrustNode = { threshold: 2, of: ['A', 'B', 'L'] };
    const want = JSON.stringify(run(['lib', 'app'], [...honest, ...lies], trust));
    assert.equal(JSON.parse(want).verified, true);
    assert.deepEqual(JSON.parse(want).signers, ['A', 'B']);
    fc.assert(
      fc.property(fc.shuffledSubarray([...honest, ...lies], { minLength: 7, maxLength: 7 }), (es) => {
        const r = run(['lib', 'app'], es, trust);
        assert.equal(JSON.stringify({ ...r, entries: undefined }), JSON.stringify({ ...JSON.parse(want), entries: undefined }));
      }),
      { numRuns: 200 },
    );
    // without B, A and the liar disagree on lib: not verified
    assert.equal(run(['lib', 'app'], [honest[0], honest[2], ...lies] as Entry[], trust).verified, false);
  });

  test('#17 class 3: a liar cannot borrow an honest vote for outputs the consumers do not use', () => {
    // H built d (dH) and built t with L's d (dL, substituted): t refers to dL at run time.
    // L signs d as dL, t from dL, and one more false claim: t from dH gives the same t. That
    // claim pulled H's claim for dH into the chosen set, so d was "signed by {H, L}" although
    // the dL the target uses is attested by L alone.
    const [dH, dL, t] = [P('dH'), P('dL'), P('t')];
    const honest = [
      entry({ udrv: 'd', signer: 'H', out: [dH, H('a')] }),
      entry({ udrv: 't', signer: 'H', rdrv: 'rtL', out: [t, H('c')], inputs: { [dL]: H('b') }, deps: [{ drv: 'd', path: dL }] }),
    ];
    const liar = [
      entry({ udrv: 'd', signer: 'L', out: [dL, H('b')] }),
      entry({ udrv: 't', signer: 'L', rdrv: 'rtL', out: [t, H('c')], inputs: { [dL]: H('b') }, deps: [{ drv: 'd', path: dL }] }),
    ];
    const borrow = entry({ udrv: 't', signer: 'L', rdrv: 'rtH', out: [t, H('c')], inputs: { [dH]: H('a') }, deps: [{ drv: 'd', path: dH }] });
    const trust: TrustNode = { threshold: 2, of: ['H', 'L'] };
    assert.equal(run(['d', 't'], [...honest, ...liar], trust).verified, false);
    const r = run(['d', 't'], [...honest, ...liar, borrow], trust);
    assert.equal(r.verified, false, 'the borrowed vote must not count');
    assert.ok(
      r.problems.some((p) => p.code === 'threshold-not-met' && p.drv === 'd' && p.detail.includes(dL) && /signed by \{L\}/.test(p.detail)),
      JSON.stringify(r.problems),
    );
    assert.ok(r.problems.some((p) => p.code === 'threshold-not-met' && p.drv === 't' && /signed by \{L\}/.test(p.detail)));
    // once H also vouches for dL (a second honest builder's claim for d under another rdrv), it verifies
    const h2 = entry({ udrv: 'd', signer: 'H', rdrv: 'r-d2', out: [dL, H('b')] });
    const ok = run(['d', 't'], [...honest, ...liar, borrow, h2], trust);
    assert.equal(ok.verified, true, JSON.stringify(ok.problems));
    assert.equal(ok.world[dL]?.narSha256, H('b'));
    assert.equal(ok.world[dH], undefined, 'dH is no input of the chosen claims');
    // 1-of-2: each chain alone is enough
    assert.equal(run(['d', 't'], [...honest, ...liar, borrow], { threshold: 1, of: ['H', 'L'] }).verified, true);
  });

  test('#17 class 3: an output only one signer gives is not attested, even when both agree on the output used', () => {
    // d has out (agreed) and a content-addressed dev that differs; t uses only d.out
    const [o, vH, vL, t] = [P('o'), P('vH'), P('vL'), P('t')];
    const multi = (signer: string, dev: string, h: string): Entry => ({
      ...entry({ udrv: 'd', signer, out: [o, H('a')] }),
      outputs: new Map([
        ['out', { path: o, sha256: H('a') }],
        ['dev', { path: dev, sha256: h }],
      ]),
    });
    const es = [
      multi('H', vH, H('b')),
      multi('L', vL, H('e')),
      ...['H', 'L'].map((s) => entry({ udrv: 't', signer: s, out: [t, H('c')], inputs: { [o]: H('a') }, deps: [{ drv: 'd', path: o }] })),
    ];
    const r = run(['d', 't'], es, { threshold: 2, of: ['H', 'L'] });
    assert.equal(r.verified, true, JSON.stringify(r.problems));
    assert.deepEqual(r.signers, ['H', 'L']);
    assert.equal(r.world[o]?.narSha256, H('a'));
    assert.equal(r.world[t]?.narSha256, H('c'));
    assert.equal(r.world[vL], undefined, 'only L gives vL: a runtime reference to it is unattested');
    assert.equal(r.world[vH], undefined);
    const r1 = run(['d', 't'], es, { threshold: 1, of: ['H', 'L'] });
    assert.equal(r1.world[vH]?.narSha256, H('b'), 'under 1-of-2 one signer attests');
  });

  test('a deep chain (100,000 derivations) is walked without recursion', () => {
    const es: Entry[] = [];
    const order: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      const u = `d${i}`;
      order.push(u);
      const prev = i > 0 ? `d${i - 1}` : undefined;
      es.push(entry({ udrv: u, signer: 'A', out: [P(u), H('a')], ...(prev ? { inputs: { [P(prev)]: H('a') }, deps: [{ drv: prev, path: P(prev) }] } : {}) }));
    }
    const nodes = new Map<string, Node>();
    for (const e of es) nodes.set(e.udrv, { drv: e.udrv, entries: [e] });
    const r = decide({ target: 'd99999', required: ['out'], order, nodes, trust: 'A', maxWorlds: 256 });
    assert.equal(r.verified, true);
    assert.equal(r.entries.length, 100_000);
  });
});

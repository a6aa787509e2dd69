import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { serializeDerivation } from '../src/nix/aterm.js';
import type { Derivation } from '../src/nix/derivation.js';
import { parseSecretKey, type NixSecretKey } from '../src/nix/nix-key.js';
import { derivationStorePath, resolveDerivation } from '../src/nix/resolve.js';
import { makeTextPath, printStorePath } from '../src/nix/store-path.js';
import { DrvLoader } from '../src/store/drv-loader.js';
import { createBundle, type BundleCheck } from '../src/trace/bundle.js';
import { buildStatement } from '../src/trace/statement.js';
import type { DepRef, Entry } from '../src/verify/claims.js';
import { verifyClosure, type CheckedLines, type VerdictSeed, type VerifyOptions, type VerifyResult } from '../src/verify/closure.js';
import type { BundleSource } from '../src/verify/sources.js';
import { loadTrustPolicy } from '../src/verify/trust-policy.js';
import type { TrustNode } from '../src/verify/trust-tree.js';
import { decide, type Node } from '../src/verify/world.js';
import { tempDir } from './helpers.js';
import { holds, modelVerifies } from './reference-model.js';

// decide() against the naive model (test/reference-model.ts) on small synthetic graphs:
// input-addressed, content-addressed and fixed-output derivations, one or two outputs,
// 1-4 signers whose claims are drawn at random (so every signer may lie, equivocate, copy or
// diverge), and nested threshold policies. BUILDTRACE_DIFF_SEED=<n> replays a run,
// BUILDTRACE_DIFF_RUNS=<n> changes its size.

const SEED = Number(process.env['BUILDTRACE_DIFF_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const RUNS = Number(process.env['BUILDTRACE_DIFF_RUNS'] ?? 2500);
/** How many of them also go through the whole closure check, inline and on the worker threads. */
const CLOSURE_RUNS = Number(process.env['BUILDTRACE_DIFF_CLOSURE_RUNS'] ?? 40);
const SIGNERS = ['A', 'B', 'C', 'D'];

const hex = (s: string): string => createHash('sha256').update(s).digest('hex');
const P = (name: string): string => `/nix/store/${hex(name).slice(0, 32)}-${name}`;

interface DrvSpec {
  readonly kind: 'ia' | 'ca';
  readonly outputs: 1 | 2;
  /** Earlier derivations used (index into the earlier ones, FOD first when there is one) and which outputs. */
  readonly deps: readonly { readonly on: number; readonly outs: 0 | 1 | 2 }[];
}
interface ClaimSpec {
  readonly drv: number;
  readonly signer: number;
  /** Per dependency: which of the output maps its producers' claims give (mod their number). */
  readonly pick: readonly number[];
  /** Per output: its content (0-2). */
  readonly content: readonly number[];
  /** Which of the hashes the producers give an input path to list (mod their number). */
  readonly inputHash: number;
  /** Content-addressed inputs only: list no inputs, as laut's #ca does. */
  readonly lautCa: boolean;
  /** 0: no source; 1/2: a source listed with content a/b. */
  readonly source: 0 | 1 | 2;
}
interface Case {
  readonly fod: boolean;
  readonly drvs: readonly DrvSpec[];
  readonly signers: number;
  readonly trust: TrustNode;
  readonly claims: readonly ClaimSpec[];
  readonly onlyOut: boolean;
}

const trustArb = (n: number): fc.Arbitrary<TrustNode> =>
  fc.tuple(fc.shuffledSubarray(SIGNERS.slice(0, n), { minLength: 1 }), fc.nat(), fc.nat(), fc.boolean()).map(([keys, t, split, nest]): TrustNode => {
    if (keys.length === 1 && !nest) return keys[0] as string;
    if (!nest || keys.length < 3) return { threshold: 1 + (t % keys.length), of: keys };
    // two levels: a group of the first keys as one child
    const g = 2 + (split % (keys.length - 1));
    const inner: TrustNode = { threshold: 1 + (t % g), of: keys.slice(0, g) };
    const of = [inner, ...keys.slice(g)];
    return { threshold: 1 + (split % of.length), of };
  });

const caseArb: fc.Arbitrary<Case> = fc
  .record({ fod: fc.boolean(), n: fc.integer({ min: 1, max: 4 }), signers: fc.integer({ min: 1, max: 4 }) })
  .chain(({ fod, n, signers }) =>
    fc.record({
      fod: fc.constant(fod),
      signers: fc.constant(signers),
      drvs: fc.tuple(
        ...Array.from({ length: n }, (_, i) =>
          fc.record({
            kind: fc.constantFrom<'ia' | 'ca'>('ca', 'ia'),
            outputs: fc.constantFrom<1 | 2>(1, 2),
            deps:
              i + (fod ? 1 : 0) === 0
                ? fc.constant([])
                : fc.uniqueArray(fc.record({ on: fc.nat(i + (fod ? 1 : 0) - 1), outs: fc.constantFrom<0 | 1 | 2>(0, 1, 2) }), {
                    selector: (d) => d.on,
                    maxLength: i + (fod ? 1 : 0),
                  }),
          }),
        ),
      ),
      trust: trustArb(signers),
      claims: fc.array(
        fc.record({
          drv: fc.nat(n - 1),
          signer: fc.nat(signers - 1),
          pick: fc.array(fc.nat(3), { minLength: 4, maxLength: 4 }),
          content: fc.array(fc.nat(2), { minLength: 2, maxLength: 2 }),
          inputHash: fc.nat(2),
          lautCa: fc.boolean(),
          source: fc.constantFrom<0 | 1 | 2>(0, 1, 2),
        }),
        { minLength: 1, maxLength: 10 },
      ),
      onlyOut: fc.boolean(),
    }),
  )
  .map((c) => c as Case);

interface Built {
  readonly nodes: Map<string, Node>;
  readonly order: string[];
  readonly target: string;
  readonly required: string[];
  /** udrv -> its input derivations (build() only) */
  readonly inputs?: ReadonlyMap<string, readonly string[]>;
}

/**
 * A claim's dependency resolutions: per dependency, one of the output maps its producer's
 * claims give (what the verifier offers as options), and each input path listed with one of
 * the hashes the claims giving that map give it (what checkClaim accepts). Undefined when a
 * dependency has no claim at all (the verifier would not look for this derivation's traces).
 */
function chooseDeps(
  cs: ClaimSpec,
  deps: readonly { readonly drv: string; readonly used: readonly string[] }[],
  nodes: ReadonlyMap<string, Node>,
): { depRefs: DepRef[]; inputs: Map<string, string>; chosen: Map<string, Map<string, string>> } | undefined {
  const depRefs: DepRef[] = [];
  const inputs = new Map<string, string>();
  const chosen = new Map<string, Map<string, string>>();
  for (const [j, d] of deps.entries()) {
    const n = nodes.get(d.drv) as Node;
    if (n.fod) {
      depRefs.push({ drv: d.drv, key: `out=${n.fod.path}` });
      inputs.set(n.fod.path, n.fod.sha256 as string);
      chosen.set(d.drv, new Map([['out', n.fod.path]]));
      continue;
    }
    const keyOf = (e: Entry): string => `${d.used.join(',')}=${d.used.map((o) => e.outputs.get(o)?.path).join(',')}`;
    const options = [...new Set(n.entries.map(keyOf))].sort();
    if (options.length === 0) return undefined;
    const key = options[(cs.pick[j] ?? 0) % options.length] as string;
    depRefs.push({ drv: d.drv, key });
    const paths = key.slice(key.indexOf('=') + 1).split(',');
    chosen.set(d.drv, new Map(d.used.map((o, k) => [o, paths[k] as string])));
    for (const path of paths) {
      const hs = [
        ...new Set(n.entries.filter((e) => keyOf(e) === key).flatMap((e) => [...e.outputs.values()].filter((o) => o.path === path).map((o) => o.sha256))),
      ].sort();
      inputs.set(path, hs[cs.inputHash % hs.length] as string);
    }
  }
  return { depRefs, inputs, chosen };
}

/** Turns a case into the claims the verifier would have checked (the checks of claims.ts hold by construction). */
function build(c: Case): Built {
  const nodes = new Map<string, Node>();
  const order: string[] = [];
  const names: string[] = [];
  const kinds = new Map<string, DrvSpec>();
  const inputs = new Map<string, string[]>();
  if (c.fod) {
    nodes.set('fod', { drv: 'fod', fod: { path: P('fod'), sha256: hex('fod') }, entries: [] });
    order.push('fod');
    names.push('fod');
  }
  c.drvs.forEach((spec, i) => {
    const u = `d${i}`;
    kinds.set(u, spec);
    const outNames = spec.outputs === 2 ? ['dev', 'out'] : ['out'];
    const deps = spec.deps
      .map((d) => ({ drv: names[d.on] as string, outs: d.outs }))
      .filter((d) => d.drv !== undefined)
      .map((d) => {
        const dk = kinds.get(d.drv);
        const avail = dk?.outputs === 2 ? ['dev', 'out'] : ['out'];
        const used = d.outs === 0 || avail.length === 1 ? ['out'] : d.outs === 1 ? ['dev'] : ['dev', 'out'];
        return { drv: d.drv, used, ca: dk?.kind === 'ca' };
      });
    const entries: Entry[] = [];
    for (const cs of c.claims.filter((x) => x.drv === i)) {
      const got = chooseDeps(cs, deps, nodes);
      if (!got) continue;
      const { depRefs, inputs } = got;
      if (cs.source > 0) inputs.set(P('src'), hex(`src${cs.source}`));
      // laut's #ca binds no inputs: only where every input path pins its content
      const lautCa = cs.lautCa && spec.kind === 'ca' && deps.every((d) => d.ca || (nodes.get(d.drv) as Node).fod);
      const rdrv = `r-${u}-${hex(depRefs.map((d) => d.key).join(' ') + (cs.source > 0 ? 'src' : '')).slice(0, 8)}`;
      const outputs = new Map(
        outNames.map((o, k) => {
          const v = cs.content[k] ?? 0;
          // an input-addressed path is fixed by the derivation; a content-addressed one by its content
          const path = spec.kind === 'ia' ? P(`${u}-${o}`) : P(`${u}-${o}-c${v}`);
          return [o, { path, sha256: hex(`${u}${o}${v}`) }];
        }),
      );
      entries.push({
        udrv: u,
        rdrvHash: rdrv,
        rdrvPath: `/nix/store/${rdrv}.drv`,
        signer: SIGNERS[cs.signer] as string,
        where: 'synthetic',
        outputs,
        inputs: lautCa ? new Map() : inputs,
        deps: depRefs,
      });
    }
    inputs.set(
      u,
      deps.map((d) => d.drv),
    );
    nodes.set(u, { drv: u, entries });
    order.push(u);
    names.push(u);
  });
  const target = order[order.length - 1] as string;
  const t = kinds.get(target);
  const required = t?.outputs === 2 && !c.onlyOut ? ['dev', 'out'] : ['out'];
  return { nodes, order, target, required, inputs };
}

function render(b: Built, trust: TrustNode): string {
  const short = (p: string): string => p.replace(/^\/nix\/store\/[0-9a-f]{32}-/, '');
  const lines = [`trust ${JSON.stringify(trust)}; target ${b.target} (${b.required.join(',')})`];
  for (const u of b.order) {
    const n = b.nodes.get(u) as Node;
    if (n.fod) lines.push(`${u}: fixed output ${short(n.fod.path)}`);
    for (const e of n.entries) {
      const outs = [...e.outputs].map(([o, v]) => `${o}=${short(v.path)}:${v.sha256.slice(0, 4)}`).join(' ');
      const ins = [...e.inputs].map(([p, h]) => `${short(p)}:${h.slice(0, 4)}`).join(' ');
      const deps = e.deps.map((d) => `${d.drv}[${d.key.replace(/\/nix\/store\/[0-9a-f]{32}-/g, '')}]`).join(' ');
      lines.push(`${u} ${e.signer} ${e.rdrvHash}: ${outs} | in ${ins || '-'} | deps ${deps || '-'}`);
    }
  }
  return lines.join('\n');
}

describe('differential: decide() agrees with the naive reference model', () => {
  test(`${RUNS} generated graphs, claims and policies (seed ${SEED}; BUILDTRACE_DIFF_SEED=${SEED} replays)`, () => {
    console.log(`differential seed ${SEED} (BUILDTRACE_DIFF_SEED=${SEED} replays this run)`);
    let verified = 0;
    let refused = 0;
    let seededDecides = 0;
    fc.assert(
      fc.property(caseArb, (c) => {
        const b = build(c);
        const v = decide({ target: b.target, required: b.required, order: b.order, nodes: b.nodes, trust: c.trust, maxWorlds: 1 << 16 });
        assert.ok(!v.problems.some((p) => p.code === 'bound-hit'), 'the generated cases stay under the world bound');
        const m = modelVerifies({ target: b.target, required: b.required, nodes: b.nodes, trust: c.trust });
        if (v.verified !== m) {
          throw new Error(`decide() says ${v.verified ? 'VERIFIED' : 'NOT VERIFIED'}, the model ${m ? 'VERIFIED' : 'NOT VERIFIED'}:\n${render(b, c.trust)}`);
        }
        // seeded: each other derivation whose verdict is verified and dispute-free settles its claims; the target's
        // verdict over the rest (the walk stops at settled derivations) is, when it verifies, the full one to the path
        // the closure below `root`, inputs first, not walked below `stop` (as verifyClosure walks)
        const walk = (root: string, stop: (u: string) => boolean): string[] => {
          const out: string[] = [];
          const seen = new Set<string>();
          const visit = (u: string): void => {
            if (seen.has(u)) return;
            seen.add(u);
            if (u === root || !stop(u)) for (const d of b.inputs?.get(u) ?? []) visit(d);
            out.push(u);
          };
          visit(root);
          return out;
        };
        for (const j of b.order.slice(0, -1)) {
          // as verifyClosure decides a target: over its closure only
          const jOrder = walk(j, () => false);
          const sv = decide({
            target: j,
            required: [...((b.nodes.get(j) as Node).entries[0]?.outputs.keys() ?? [])],
            order: jOrder,
            nodes: new Map(jOrder.map((u) => [u, b.nodes.get(u) as Node])),
            trust: c.trust,
            maxWorlds: 1 << 16,
          });
          const settled = sv.settled;
          if (!settled) continue;
          const order = walk(b.target, (u) => settled.live.has(u));
          const nodes = new Map(
            order.map((u) => [
              u,
              u !== b.target && settled.live.has(u) && !(b.nodes.get(u) as Node).fod
                ? { drv: u, entries: settled.live.get(u) as Entry[] }
                : (b.nodes.get(u) as Node),
            ]),
          );
          const s = decide({ target: b.target, required: b.required, order, nodes, trust: c.trust, maxWorlds: 1 << 16, settled });
          if (!s.verified) continue;
          seededDecides++;
          // the full verdict over the target's closure, as verifyClosure gives it
          const all = walk(b.target, () => false);
          const f = decide({
            target: b.target,
            required: b.required,
            order: all,
            nodes: new Map(all.map((u) => [u, b.nodes.get(u) as Node])),
            trust: c.trust,
            maxWorlds: 1 << 16,
          });
          if (!f.verified) throw new Error(`seeded by ${j}: VERIFIED, in full NOT VERIFIED:\n${render(b, c.trust)}`);
          assert.deepEqual(
            { outputs: s.outputs, world: s.world, signers: s.signers, entries: new Set(s.entries) },
            { outputs: f.outputs, world: f.world, signers: f.signers, entries: new Set(f.entries) },
            `seeded by ${j}:\n${render(b, c.trust)}`,
          );
        }
        if (v.verified) {
          verified++;
          // what the verdict attests, the claims at its producer that give it vouch for under the policy
          for (const [path, w] of Object.entries(v.world)) {
            const n = w.producerDrv === undefined ? undefined : b.nodes.get(w.producerDrv);
            if (!n || n.fod) continue;
            const by = new Set(n.entries.filter((e) => [...e.outputs.values()].some((o) => o.path === path && o.sha256 === w.narSha256)).map((e) => e.signer));
            if (!holds(c.trust, by)) throw new Error(`world attests ${path}, vouched only by {${[...by].join(', ')}}:\n${render(b, c.trust)}`);
          }
        } else refused++;
      }),
      { seed: SEED, numRuns: RUNS, includeErrorInReport: true },
    );
    console.log(`differential: ${verified} verified, ${refused} not verified; ${seededDecides} seeded decides verified`);
    // a generator that never reaches one of the verdicts tests nothing
    assert.ok(verified > RUNS / 20 && refused > RUNS / 20, `${verified} verified, ${refused} not`);
    assert.ok(seededDecides > RUNS / 100, `${seededDecides} seeded decides verified`);
  });
});

// --- the same cases as real .drv files and signed bundles, through verifyClosure ---

/** A Nix secret key made in-process (name:base64 of seed and public key). */
function nixKey(name: string): NixSecretKey {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }) as { d: string; x: string };
  return parseSecretKey(`${name}:${Buffer.concat([Buffer.from(jwk.d, 'base64url'), Buffer.from(jwk.x, 'base64url')]).toString('base64')}`);
}

interface BuiltClosure extends Built {
  readonly lines: Map<string, string[]>;
  readonly drvs: ReadonlyMap<string, Derivation>;
}

/**
 * A case as a closure: derivations (served from memory, as parsed .drv files would be), one bundle per claim signed by its
 * signer's key, and the entries the verifier should derive from them (for the model). Claims
 * list their inputs (our build type); a derivation with a content-addressed input is itself
 * content-addressed (an input-addressed one would be deferred); no sources.
 */
function buildClosure(c: Case, keys: readonly NixSecretKey[], storeDir: string, tag: string): BuiltClosure {
  const nodes = new Map<string, Node>();
  const order: string[] = [];
  const lines = new Map<string, string[]>();
  const drvs = new Map<string, Derivation>();
  const caOf = new Map<string, boolean>();
  const text = (name: string, content: string): string => printStorePath(makeTextPath(name, content, [], storeDir));
  const write = (drv: Derivation): string => {
    const path = printStorePath(derivationStorePath(drv, serializeDerivation(drv), storeDir));
    drvs.set(path, drv);
    return path;
  };
  if (c.fod) {
    const name = `fod-${tag}`;
    const path = text(name, 'fixed');
    const drv: Derivation = {
      outputs: new Map([['out', { path, hashAlgo: 'r:sha256', hash: hex(name) }]]),
      inputDrvs: new Map(),
      inputSrcs: [],
      platform: 'x86_64-linux',
      builder: '/bin/sh',
      args: [],
      env: new Map([['name', name]]),
    };
    const p = write(drv);
    nodes.set(p, { drv: p, fod: { path, sha256: hex(name) }, entries: [] });
    order.push(p);
  }
  c.drvs.forEach((spec, i) => {
    const name = `d${i}-${tag}`;
    const deps = spec.deps
      .map((d) => order[d.on])
      .filter((d): d is string => d !== undefined)
      .map((d, j) => {
        const dd = drvs.get(d) as Derivation;
        const avail = [...dd.outputs.keys()].sort();
        const o = spec.deps[j]?.outs ?? 0;
        const used = o === 0 || avail.length === 1 ? ['out'] : o === 1 ? ['dev'] : ['dev', 'out'];
        return { drv: d, used };
      });
    const ca = spec.kind === 'ca' || deps.some((d) => caOf.get(d.drv));
    const outNames = spec.outputs === 2 ? ['dev', 'out'] : ['out'];
    const outName = (o: string): string => (o === 'out' ? name : `${name}-${o}`);
    const drv: Derivation = {
      outputs: new Map(outNames.map((o) => [o, ca ? { path: '', hashAlgo: 'r:sha256', hash: '' } : { path: text(outName(o), 'ia'), hashAlgo: '', hash: '' }])),
      inputDrvs: new Map(deps.map((d) => [d.drv, d.used])),
      inputSrcs: [],
      platform: 'x86_64-linux',
      builder: '/bin/sh',
      args: ['-c', 'true'],
      env: new Map([['name', name]]),
    };
    const u = write(drv);
    caOf.set(u, ca);
    const entries: Entry[] = [];
    for (const cs of c.claims.filter((x) => x.drv === i)) {
      const got = chooseDeps(cs, deps, nodes);
      if (!got) continue;
      const { depRefs, inputs, chosen } = got;
      const res = resolveDerivation(drv, (d, o) => chosen.get(d)?.get(o), storeDir);
      const outputs = new Map(
        outNames.map((o, k) => {
          const v = cs.content[k] ?? 0;
          const path = ca ? text(outName(o), `content ${v}`) : (drv.outputs.get(o)?.path as string);
          return [o, { path, sha256: hex(`${u}${o}${v}`) }];
        }),
      );
      const key = keys[cs.signer] as NixSecretKey;
      const statement = buildStatement({
        kind: ca ? 'ca' : 'ia',
        resolvedInputHash: res.path.hashPart,
        drvName: name,
        outputs: [...outputs].map(([o, v]) => ({ name: o, path: v.path, sha256: v.sha256, narSize: 100, declared: ca ? { hashAlgo: 'r:sha256' } : {} })),
        inputs: [...inputs].map(([path, sha256]) => ({ path, sha256, narSize: 100 })),
        keyFingerprint: key.publicKey.fingerprint,
        versions: {},
        invocationId: hex(`${u}${entries.length}`).slice(0, 32),
        finishedOn: '2026-01-01T00:00:00Z',
      });
      const l = lines.get(res.path.hashPart) ?? [];
      l.push(createBundle(Buffer.from(JSON.stringify(statement)), key));
      lines.set(res.path.hashPart, l);
      entries.push({
        udrv: u,
        rdrvHash: res.path.hashPart,
        rdrvPath: printStorePath(res.path),
        signer: SIGNERS[cs.signer] as string,
        where: 'synthetic',
        outputs,
        inputs,
        deps: depRefs,
      });
    }
    nodes.set(u, { drv: u, entries });
    order.push(u);
  });
  const target = order[order.length - 1] as string;
  const required = (drvs.get(target) as Derivation).outputs.size === 2 && !c.onlyOut ? ['dev', 'out'] : ['out'];
  return { nodes, order, target, required, lines, drvs };
}

/** The same bundle with another (well-formed, wrong) signature: its first byte flipped. */
function resign(line: string): string {
  const b = JSON.parse(line) as { dsseEnvelope: { signatures: { sig: string }[] } };
  for (const s of b.dsseEnvelope.signatures) {
    const sig = Buffer.from(s.sig, 'base64');
    sig[0] = (sig[0] as number) ^ 1;
    s.sig = sig.toString('base64');
  }
  return JSON.stringify(b);
}

describe('differential: the whole closure check, inline and on the worker threads, agrees with the model', () => {
  test(`${CLOSURE_RUNS} generated closures (seed ${SEED})`, async () => {
    const storeDir = '/nix/store';
    const dir = tempDir('diff-closure-');
    const keys = SIGNERS.map((n) => nixKey(`diff-${n}`));
    let k = 0;
    let verified = 0;
    let seededRuns = 0;
    // one memo across all cases, as serve keeps one across requests
    const memo = new Map<string, BundleCheck>();
    const checkedLines: CheckedLines = { get: (key) => memo.get(key), set: (key, v) => void memo.set(key, v) };
    const resolutions: NonNullable<VerifyOptions['resolutions']> = new Map();
    const env = { pool: process.env['BUILDTRACE_POOL'], min: process.env['BUILDTRACE_POOL_MIN'] };
    const setPool = (on: boolean): void => {
      process.env['BUILDTRACE_POOL'] = on ? 'always' : 'never';
      process.env['BUILDTRACE_POOL_MIN'] = on ? '0' : 'never';
    };
    try {
      await fc.assert(
        fc.asyncProperty(caseArb, async (raw) => {
          const c: Case = { ...raw, claims: raw.claims.map((x) => ({ ...x, source: 0, lautCa: false })) };
          const b = buildClosure(c, keys, storeDir, `${SEED}-${k++}`);
          const m = modelVerifies({ target: b.target, required: b.required, nodes: b.nodes, trust: c.trust });
          const policyFile = join(dir, `policy-${k}.json`);
          const named = SIGNERS.slice(0, c.signers);
          writeFileSync(
            policyFile,
            JSON.stringify({
              keys: Object.fromEntries(
                named.map((n, i) => [n, { publicKey: `${keys[i]?.publicKey.name}:${Buffer.from(keys[i]?.publicKey.raw ?? []).toString('base64')}` }]),
              ),
              trust: c.trust,
              maxResolutions: 1 << 16,
            }),
          );
          const source: BundleSource = {
            name: 'memory',
            bundles: async (h) => b.lines.get(h) ?? [],
            keyEvidence: async () => [],
            traceEvidence: async () => [],
          };
          const verdicts: boolean[] = [];
          for (const pool of [false, true]) {
            setPool(pool);
            // the .drv files as the loader would parse them (the graph is never written to the store)
            const loader = new DrvLoader(storeDir, Number.POSITIVE_INFINITY);
            loader.drv = (path: string): Derivation => {
              const d = b.drvs.get(path);
              if (!d) throw new Error(`no derivation ${path}`);
              return d;
            };
            const r = await verifyClosure(b.target, {
              policy: loadTrustPolicy(policyFile),
              sources: [source],
              loader,
              storeDir,
              requiredOutputs: b.required,
            });
            const unexpected = r.problems.filter(
              (p) => !['threshold-not-met', 'content-disputed', 'equivocation', 'dependency-unsupported', 'no-bundle', 'key-not-admitted'].includes(p.code),
            );
            if (unexpected.length > 0) throw new Error(`unexpected problems ${JSON.stringify(unexpected)}:\n${render(b, c.trust)}`);
            verdicts.push(r.verified);
          }
          if (verdicts[0] !== m || verdicts[1] !== m) {
            throw new Error(`verifyClosure inline ${verdicts[0]}, on the pool ${verdicts[1]}, the model ${m}:\n${render(b, c.trust)}`);
          }
          // serve keeps signature checks across verdicts (checkedLines): warm, the verdict is the same; a policy that
          // names fewer keys, or lines whose signatures changed since, are checked again, never taken from the memo
          // as serve runs it: the worker pool started only after the walk
          setPool(true);
          const memoLoader = new DrvLoader(storeDir, Number.POSITIVE_INFINITY);
          memoLoader.drv = (path: string): Derivation => b.drvs.get(path) as Derivation;
          const withMemo = (policy: string, src: BundleSource) =>
            verifyClosure(b.target, {
              policy: loadTrustPolicy(policy),
              sources: [src],
              loader: memoLoader,
              storeDir,
              requiredOutputs: b.required,
              checkedLines,
              resolutions,
              poolAfterWalk: true,
            });
          const allKeysPolicy = join(dir, `policy-${k}-all.json`);
          writeFileSync(
            allKeysPolicy,
            JSON.stringify({
              keys: Object.fromEntries(
                SIGNERS.map((n, i) => [n, { publicKey: `${keys[i]?.publicKey.name}:${Buffer.from(keys[i]?.publicKey.raw ?? []).toString('base64')}` }]),
              ),
              trust: { threshold: 1, of: [...SIGNERS] },
              maxResolutions: 1 << 16,
            }),
          );
          const first = await withMemo(policyFile, source);
          // more keys known: a line refused before as signed by an unknown key is checked again
          const all = await withMemo(allKeysPolicy, source);
          const allFresh = await verifyClosure(b.target, {
            policy: loadTrustPolicy(allKeysPolicy),
            sources: [source],
            loader: memoLoader,
            storeDir,
            requiredOutputs: b.required,
          });
          if (all.verified !== allFresh.verified) throw new Error(`under all keys: ${all.verified} after a run under fewer keys, ${allFresh.verified} fresh`);
          const warm = [first, await withMemo(policyFile, source)];
          if (warm.some((r) => r.verified !== m)) throw new Error(`with checks kept across runs: ${warm.map((r) => r.verified)}, the model ${m}`);
          // seeded (serve: a new top over a closure verified seconds ago): each derivation below the target that
          // verifies seeds the target's verdict, which must be the model's and, verified, the full run's to the path
          const policy = loadTrustPolicy(policyFile);
          const counted = (): { src: BundleSource; reads: () => number } => {
            let n = 0;
            return {
              src: {
                ...source,
                bundles: async (h) => {
                  n++;
                  return b.lines.get(h) ?? [];
                },
              },
              reads: () => n,
            };
          };
          let left: VerdictSeed | undefined;
          const run = (t: string, src: BundleSource, seed?: VerdictSeed, pol = policy) =>
            verifyClosure(t, {
              onSeed: (s) => {
                left = s;
              },
              policy: pol,
              sources: [src],
              loader: memoLoader,
              storeDir,
              ...(t === b.target ? { requiredOutputs: b.required } : {}),
              ...(seed ? { seed } : {}),
            });
          const fullCount = counted();
          const full = await run(b.target, fullCount.src);
          const same = (r: VerifyResult) => ({
            verified: r.verified,
            outputs: r.outputs,
            world: r.world,
            signers: r.signers,
            derivationsChecked: r.derivationsChecked,
            entries: r.entries.map((e) => JSON.stringify(e)).sort(),
          });
          for (const j of b.order.slice(0, -1)) {
            left = undefined;
            await run(j, source);
            const sd = left;
            if (!sd) continue;
            const cr = counted();
            const seeded = await run(b.target, cr.src, sd);
            if (seeded.verified !== m) throw new Error(`seeded by ${j}: ${seeded.verified}, the model ${m}:\n${render(b, c.trust)}`);
            if (m) assert.deepEqual(same(seeded), same(full), `seeded by ${j}: not the full run's verdict:\n${render(b, c.trust)}`);
            if (cr.reads() < fullCount.reads()) seededRuns++;
            // a seed made under another policy (the same file read again: serve keeps one object until it changes) is not used
            const o = counted();
            const other = await run(b.target, o.src, sd, loadTrustPolicy(policyFile));
            assert.equal(other.verified, m);
            assert.equal(o.reads(), fullCount.reads(), 'a seed under another policy read fewer traces');
          }
          const tampered: BundleSource = { ...source, bundles: async (h) => (b.lines.get(h) ?? []).map(resign) };
          const t = await withMemo(policyFile, tampered);
          if (t.verified && t.entries.length > 0) throw new Error(`lines whose signatures changed after a warm run still verify:\n${render(b, c.trust)}`);
          if (m) verified++;
        }),
        { seed: SEED, numRuns: CLOSURE_RUNS, includeErrorInReport: true },
      );
    } finally {
      for (const [name, v] of [
        ['BUILDTRACE_POOL', env.pool],
        ['BUILDTRACE_POOL_MIN', env.min],
      ] as const) {
        if (v === undefined) delete process.env[name];
        else process.env[name] = v;
      }
    }
    console.log(`differential (closures): ${verified} of ${CLOSURE_RUNS} verified; ${seededRuns} seeded runs read fewer traces`);
    assert.ok(verified > 0 && verified < CLOSURE_RUNS, 'both verdicts occur');
  });
});

describe('seeded verdicts on a chain (a new top over a verified closure)', () => {
  test('a seed is used (fewer traces read) and gives the full verdict; a lying or missing claim at the new top is refused as without a seed; a dispute below keeps the seed out', async () => {
    const storeDir = '/nix/store';
    const dir = tempDir('diff-seeded-');
    const keys = SIGNERS.map((n) => nixKey(`seeded-${n}`));
    const honest = (drv: number, signer: number, content = 0): ClaimSpec => ({
      drv,
      signer,
      pick: [0, 0, 0, 0],
      content: [content, 0],
      inputHash: 0,
      lautCa: false,
      source: 0,
    });
    // d0 <- d1 <- d2 <- d3 (the target), input-addressed; the seed is d2's verdict
    const chain = (claims: ClaimSpec[], trust: TrustNode): Case => ({
      fod: false,
      signers: 2,
      trust,
      onlyOut: true,
      drvs: [0, 1, 2, 3].map((i) => ({ kind: 'ia', outputs: 1, deps: i === 0 ? [] : [{ on: i - 1, outs: 0 }] })),
      claims,
    });
    const both = (d: number): ClaimSpec[] => [honest(d, 0), honest(d, 1)];
    let k = 0;
    const run = async (c: Case) => {
      const b = buildClosure(c, keys, storeDir, `seeded-${k++}`);
      const policyFile = join(dir, `policy-${k}.json`);
      writeFileSync(
        policyFile,
        JSON.stringify({
          keys: Object.fromEntries(
            SIGNERS.slice(0, 2).map((n, i) => [n, { publicKey: `${keys[i]?.publicKey.name}:${Buffer.from(keys[i]?.publicKey.raw ?? []).toString('base64')}` }]),
          ),
          trust: c.trust,
        }),
      );
      const policy = loadTrustPolicy(policyFile);
      const loader = new DrvLoader(storeDir, Number.POSITIVE_INFINITY);
      loader.drv = (path: string): Derivation => b.drvs.get(path) as Derivation;
      let reads = 0;
      let firstReadAt: number | undefined;
      const source: BundleSource = {
        name: 'memory',
        bundles: async (h) => {
          reads++;
          firstReadAt ??= Date.now();
          // reads take time (a run's end is later than its first read)
          await new Promise((r) => setTimeout(r, 1));
          return b.lines.get(h) ?? [];
        },
        keyEvidence: async () => [],
        traceEvidence: async () => [],
      };
      const verify = async (t: string, seed?: VerdictSeed) => {
        reads = 0;
        firstReadAt = undefined;
        let left: VerdictSeed | undefined;
        const r = await verifyClosure(t, {
          policy,
          sources: [source],
          loader,
          storeDir,
          ...(seed ? { seed } : {}),
          onSeed: (s) => {
            left = s;
          },
        });
        return { r, reads, left, firstReadAt };
      };
      const seed = await verify(b.order[2] as string);
      assert.ok(seed.r.verified, 'the seed verifies');
      // a full run's seed is dated no later than its first read (its claims are no older than that)
      if (seed.left) assert.ok(seed.firstReadAt !== undefined && seed.left.madeAt <= seed.firstReadAt, `${seed.left.madeAt} > ${seed.firstReadAt}`);
      // time passes between the seed and the verdicts that use it
      await new Promise((r) => setTimeout(r, 5));
      const full = await verify(b.target);
      const seeded = await verify(b.target, seed.left);
      const m = modelVerifies({ target: b.target, required: b.required, nodes: b.nodes, trust: c.trust });
      assert.equal(full.r.verified, m);
      // a verdict that rests on the seed says when the seed was made (the caller dates its reads by it)
      const { seededAt, ...rest } = seeded.r;
      // (fewer reads: the seeded run was the answer; a seeded run that did not verify was followed by the full one)
      assert.equal(seededAt !== undefined, seeded.reads < full.reads, 'seededAt exactly when the answer rests on the seed');
      if (seededAt !== undefined) assert.equal(seededAt, seed.left?.madeAt);
      assert.deepEqual(rest, full.r);
      // a seeded verdict leaves a seed too (the next new top starts from both), as the full one does
      assert.equal(seeded.left !== undefined, full.left !== undefined);
      // dated as the seed it rests on: its settled claims are that old, and a chain of seeds
      // (each new top seeding the next) never makes them look newer
      if (seededAt !== undefined && seeded.left) assert.equal(seeded.left.madeAt, seed.left?.madeAt);
      return { full, seeded };
    };
    const twoOfTwo: TrustNode = { threshold: 2, of: ['A', 'B'] };
    // honest, 2-of-2: d3 and d2 read, d1 and d0 settled by the seed
    const ok = await run(chain([0, 1, 2, 3].flatMap(both), twoOfTwo));
    assert.ok(ok.full.r.verified);
    assert.equal(ok.full.reads, 4);
    assert.equal(ok.seeded.reads, 2);
    // B lies about the new top's content: 2-of-2 refuses it (the seeded run, then the full one), 1-of-2 serves A's
    const lie = [...[0, 1, 2].flatMap(both), honest(3, 0), honest(3, 1, 1)];
    const refused = await run(chain(lie, twoOfTwo));
    assert.equal(refused.seeded.r.verified, false);
    assert.equal(refused.seeded.reads, 2 + 4);
    assert.ok(
      refused.seeded.r.problems.some((p) => p.code === 'content-disputed'),
      JSON.stringify(refused.seeded.r.problems),
    );
    const oneOfTwo = await run(chain(lie, { threshold: 1, of: ['A', 'B'] }));
    assert.ok(oneOfTwo.seeded.r.verified);
    // no claim at the new top: no-bundle, as without a seed
    const missing = await run(chain([0, 1, 2].flatMap(both), twoOfTwo));
    assert.deepEqual(
      missing.seeded.r.problems.map((p) => p.code),
      ['no-bundle'],
    );
    // B's claim for d0 has other content: disputed below, so the seed leaves nothing to start from (every trace read)
    const disputed = await run(chain([honest(0, 0), honest(0, 1, 1), ...[1, 2, 3].flatMap(both)], { threshold: 1, of: ['A', 'B'] }));
    assert.equal(disputed.seeded.reads, 4);
  });
});

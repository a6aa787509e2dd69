import { BuildtraceError, errorMessage } from '../errors.js';
import { derivationKind, derivationName, parseOutputHashAlgo, type Derivation } from '../nix/derivation.js';
import { parseHash } from '../nix/hash.js';
import type { NixPublicKey } from '../nix/nix-key.js';
import { resolveDerivation, type InputOutputLookup, type Resolution } from '../nix/resolve.js';
import { parseStorePath, printStorePath } from '../nix/store-path.js';
import type { DrvLoader } from '../store/drv-loader.js';
import { checkBundleAsync, type BundleCheck } from '../trace/bundle.js';
import { admitKeys } from './admission.js';
import { BundlePool } from './bundle-pool.js';
import type { ParsedStatement } from '../trace/statement.js';
import type { BundleSource } from './sources.js';
import { describeTrust, missing, satisfies, type TrustPolicy } from './trust-policy.js';

/** Why a position (a derivation, possibly a specific resolution of it) does not verify. */
export type ProblemCode =
  | 'no-bundle'
  | 'signature-invalid'
  | 'key-not-admitted'
  | 'tee-evidence-failed'
  | 'malformed'
  | 'builder-mismatch'
  | 'replayed'
  | 'output-mismatch'
  | 'input-hash-mismatch'
  | 'input-missing'
  | 'dependency-unsupported'
  | 'threshold-not-met'
  | 'bound-hit'
  | 'derivation-unreadable';

export interface Problem {
  readonly drv: string;
  readonly code: ProblemCode;
  readonly detail: string;
  readonly resolvedDrv?: string;
  readonly signer?: string;
  readonly where?: string;
}

interface OutputValue {
  readonly path: string;
  /** NAR SHA-256 (hex) when known; floating FOD outputs may lack it. */
  readonly sha256: string | undefined;
}
type OutputMap = ReadonlyMap<string, OutputValue>;

interface Entry {
  readonly udrv: string;
  readonly rdrvHash: string;
  readonly signer: string;
  readonly outputs: OutputMap;
  readonly deps: ReadonlyArray<{ readonly drv: string; readonly claim: string }>;
}

interface Claim {
  readonly key: string;
  readonly outputs: OutputMap;
  readonly entries: Entry[];
  readonly fod: boolean;
}

interface NodeResult {
  readonly drv: string;
  readonly name: string;
  readonly fod: boolean;
  readonly claims: Map<string, Claim>;
}

export interface VerifyResult {
  readonly verified: boolean;
  readonly target: string;
  readonly outputs: Record<string, string>;
  readonly derivationsChecked: number;
  readonly signers: string[];
  readonly candidates: number;
  readonly trust: string;
  readonly problems: Problem[];
  readonly keyStatus: Record<string, { admitted: boolean; detail: string }>;
}

export interface VerifyOptions {
  readonly policy: TrustPolicy;
  readonly sources: readonly BundleSource[];
  readonly loader: DrvLoader;
  readonly requiredOutputs?: readonly string[];
  readonly at?: Date;
  readonly storeDir?: string;
  /** 'load': derivations read so far (total unknown yet); 'check': derivations checked of all. */
  readonly progress?: (phase: 'load' | 'check', done: number, total?: number) => void;
  readonly concurrency?: number;
}

function claimKey(m: OutputMap): string {
  return [...m.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([n, v]) => `${n}=${v.path}:${v.sha256 ?? ''}`)
    .join(';');
}

function restrict(m: OutputMap, names: readonly string[]): OutputMap {
  return new Map(names.map((n) => [n, m.get(n) as OutputValue]));
}

/**
 * The whole derivation graph below `root`, children before parents (iterative: closures
 * are deep). `emit` sees each derivation once all of its inputs are loaded; the walk yields
 * to the event loop now and then, so work `emit` starts (cache reads, signature checks on
 * the worker threads) proceeds while the rest of the graph loads.
 */
async function postOrder(root: string, loader: DrvLoader, emit: (p: string) => void, progress?: (loaded: number) => void): Promise<string[]> {
  const order: string[] = [];
  const state = new Map<string, 1 | 2>();
  const stack: [string, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [p, expanded] = stack.pop() as [string, boolean];
    if (expanded) {
      if (state.get(p) !== 2) {
        state.set(p, 2);
        order.push(p);
        emit(p);
        if (order.length % 256 === 0) {
          progress?.(order.length);
          await new Promise(setImmediate);
        }
      }
      continue;
    }
    if (state.has(p)) continue;
    state.set(p, 1);
    stack.push([p, true]);
    for (const d of loader.drv(p).inputDrvs.keys()) if (!state.has(d)) stack.push([d, false]);
  }
  return order;
}

/** Bundles stored under one resolved derivation, each with its check under way. */
interface Lookup {
  readonly where: string;
  readonly check: Promise<BundleCheck>;
}

function fodOutput(drv: Derivation): OutputValue {
  const o = drv.outputs.get('out');
  if (!o) throw new BuildtraceError('DERIVATION_INVALID', 'fixed-output derivation without "out"');
  const { method, algo } = parseOutputHashAlgo(o.hashAlgo);
  // A recursive SHA-256 FOD declares its NAR hash; a flat one declares the file's hash only.
  return { path: o.path, sha256: method === 'recursive' && algo === 'sha256' ? Buffer.from(parseHash(o.hash, 'sha256').bytes).toString('hex') : undefined };
}

export async function verifyClosure(target: string, opts: VerifyOptions): Promise<VerifyResult> {
  const { policy, loader } = opts;
  const storeDir = opts.storeDir ?? '/nix/store';
  const problems: Problem[] = [];

  const admission = await admitKeys(policy, opts.sources, opts.at ? { at: opts.at } : {});
  const keyStatus = { ...admission.keyStatus };
  const allKeys = admission.knownKeys;

  // start the workers now: their start-up overlaps reading the derivation graph
  let pool: BundlePool | undefined = opts.sources.length > 0 && process.env['BUILDTRACE_POOL_MIN'] !== 'never' ? new BundlePool(allKeys) : undefined;
  // worker threads pay off once there are many bundles to check (BUILDTRACE_POOL_MIN: tests force them)
  const poolMin = Number(process.env['BUILDTRACE_POOL_MIN'] ?? 500);

  // Every source's bundles for a resolved derivation, read once, checks started at once.
  const lookups = new Map<string, Promise<Lookup[]>>();
  const lookup = (h: string): Promise<Lookup[]> => {
    let l = lookups.get(h);
    if (!l) {
      l = (async () => {
        const out: Lookup[] = [];
        const seen = new Set<string>();
        for (const src of opts.sources) {
          for (const line of await src.bundles(h)) {
            if (seen.has(line)) continue;
            seen.add(line);
            const check = pool ? pool.check(line) : checkBundleAsync(line, allKeys);
            // a prefetched check nobody awaits (its derivation failed earlier) must not crash the run
            check.catch(() => undefined);
            out.push({ where: src.name, check });
          }
        }
        return out;
      })();
      l.catch(() => undefined);
      lookups.set(h, l);
    }
    return l;
  };

  // a derivation without input derivations is its own resolution
  const resolutionOf = (p: string, drv: Derivation, path: InputOutputLookup): Pick<Resolution, 'drv' | 'path'> =>
    drv.inputDrvs.size === 0 ? { drv, path: parseStorePath(p, storeDir) } : resolveDerivation(drv, path, storeDir);
  // an input's output path as its .drv declares it (none for content-addressed outputs)
  const declared = (d: string, o: string): string | undefined => loader.drv(d).outputs.get(o)?.path || undefined;

  // The resolution a derivation has when all its inputs have fixed output paths (input-
  // addressed and fixed-output inputs): known as soon as its inputs are loaded, so its
  // bundles can be fetched and checked while the rest of the graph loads.
  const staticResolution = new Map<string, Pick<Resolution, 'drv' | 'path'>>();
  const emitted: string[] = [];
  let prefetching = false;
  const prefetch = (p: string): void => {
    const r = staticResolution.get(p);
    if (r) void lookup(r.path.hashPart);
  };
  const onLoaded = (p: string): void => {
    const drv = loader.drv(p);
    if (derivationKind(drv, p) === 'fixed') return;
    for (const [d, outs] of drv.inputDrvs) for (const o of outs) if (declared(d, o) === undefined) return;
    try {
      staticResolution.set(p, resolutionOf(p, drv, declared));
    } catch {
      return; // processNode meets the same error and reports it
    }
    if (!pool) return;
    if (prefetching) prefetch(p);
    else {
      emitted.push(p);
      if (emitted.length >= poolMin) {
        prefetching = true;
        for (const q of emitted.splice(0)) prefetch(q);
      }
    }
  };

  let order: string[];
  try {
    order = await postOrder(target, loader, onLoaded, opts.progress && ((n) => opts.progress?.('load', n)));
  } catch (err) {
    await pool?.close();
    throw new BuildtraceError('FILE_UNREADABLE', `cannot read the derivation graph of ${target}: ${errorMessage(err)}`, { subject: target });
  }
  const results = new Map<string, NodeResult>();
  // nothing is in flight on the workers unless prefetching began, which needs poolMin derivations
  if (pool && order.length < poolMin) {
    await pool.close();
    pool = undefined;
  }

  const processNode = async (p: string): Promise<void> => {
    const drv = loader.drv(p);
    const name = derivationName(drv, p);
    const kind = derivationKind(drv, p);
    if (kind === 'fixed') {
      const outputs = new Map([['out', fodOutput(drv)]]);
      const key = claimKey(outputs);
      results.set(p, { drv: p, name, fod: true, claims: new Map([[key, { key, outputs, entries: [], fod: true }]]) });
      return;
    }
    const claims = new Map<string, Claim>();
    const deps = [...drv.inputDrvs.entries()];
    const depClaims: { drv: string; outs: readonly string[]; claims: Claim[] }[] = [];
    for (const [d, outs] of deps) {
      const r = results.get(d) as NodeResult;
      // only claims that give every output this derivation uses
      const usable = [...r.claims.values()].filter((c) => outs.every((o) => c.outputs.has(o)));
      if (usable.length === 0) {
        problems.push({ drv: p, code: 'dependency-unsupported', detail: `input ${d} has no verified resolution` });
        results.set(p, { drv: p, name, fod: false, claims });
        return;
      }
      depClaims.push({ drv: d, outs, claims: usable });
    }
    // every combination of the dependencies' plausible resolutions, bounded
    let total = 1;
    for (const dc of depClaims) total *= dc.claims.length;
    const limit = Math.min(total, policy.maxResolutions);
    if (total > policy.maxResolutions) {
      problems.push({ drv: p, code: 'bound-hit', detail: `${total} combinations of input resolutions; only the first ${policy.maxResolutions} were tried (raise maxResolutions)` });
    }
    for (let n = 0; n < limit; n++) {
      let rest = n;
      const chosen = new Map<string, Claim>();
      for (const dc of depClaims) {
        chosen.set(dc.drv, dc.claims[rest % dc.claims.length] as Claim);
        rest = Math.floor(rest / dc.claims.length);
      }
      // chosen inputs at their declared paths give the resolution already computed
      const st = staticResolution.get(p);
      const res =
        st && depClaims.every((dc) => dc.outs.every((o) => (chosen.get(dc.drv) as Claim).outputs.get(o)?.path === declared(dc.drv, o)))
          ? st
          : resolutionOf(p, drv, (d, o) => chosen.get(d)?.outputs.get(o)?.path);
      const rdrvPath = printStorePath(res.path);
      const h = res.path.hashPart;
      // input NAR digests the chosen dependency claims vouch for
      const expectInputs = new Map<string, string | undefined>();
      for (const dc of depClaims) for (const o of dc.outs) {
        const v = (chosen.get(dc.drv) as Claim).outputs.get(o) as OutputValue;
        expectInputs.set(v.path, v.sha256);
      }
      const rdrvKind = derivationKind(res.drv, rdrvPath);
      const found = await lookup(h);
      if (found.length === 0) {
        problems.push({ drv: p, code: 'no-bundle', resolvedDrv: rdrvPath, detail: `no trace for resolved derivation ${rdrvPath} in ${opts.sources.map((s) => s.name).join(', ')}` });
        continue;
      }
      for (const { check, where } of found) {
        const c = await check;
        if (!c.ok) {
          problems.push({ drv: p, code: c.reason, resolvedDrv: rdrvPath, detail: c.detail, where });
          continue;
        }
        const who = await admission.identityFor(c.value.key.fingerprint);
        if ('rejected' in who) {
          problems.push({ drv: p, code: who.code, resolvedDrv: rdrvPath, ...(who.signer !== undefined ? { signer: who.signer } : {}), detail: who.rejected, where });
          continue;
        }
        const signer = who.identity;
        const st: ParsedStatement = c.value.statement;
        if (st.resolvedInputHash !== h) {
          problems.push({ drv: p, code: 'replayed', resolvedDrv: rdrvPath, signer, detail: `bundle stored under ${h} is for resolved derivation ${st.resolvedInputHash}`, where });
          continue;
        }
        const wantKind = rdrvKind === 'floating' ? 'ca' : 'ia';
        const names = [...res.drv.outputs.keys()].sort();
        if (st.kind !== wantKind || [...st.outputs.keys()].sort().join(',') !== names.join(',')) {
          problems.push({ drv: p, code: 'output-mismatch', resolvedDrv: rdrvPath, signer, detail: `statement (${st.kind}: ${[...st.outputs.keys()].join(', ')}) does not describe this ${wantKind} derivation (${names.join(', ')})`, where });
          continue;
        }
        let bad: Problem | undefined;
        for (const [on, o] of res.drv.outputs) {
          const so = st.outputs.get(on) as { path: string };
          const okPath = o.path !== '' ? so.path === o.path : (() => {
            try {
              const sp = parseStorePath(so.path, storeDir);
              return sp.name === (on === 'out' ? name : `${name}-${on}`);
            } catch {
              return false;
            }
          })();
          if (!okPath) {
            bad = { drv: p, code: 'output-mismatch', resolvedDrv: rdrvPath, signer, detail: `output ${on} claimed at ${so.path}, derivation says ${o.path || 'a content-addressed path'}`, where };
            break;
          }
        }
        if (!bad && st.kind !== 'ca') {
          const listed = new Map(st.inputs.map((i) => [i.path, i.sha256]));
          for (const [path, sha] of expectInputs) {
            const got = listed.get(path);
            if (got === undefined) {
              bad = { drv: p, code: 'input-missing', resolvedDrv: rdrvPath, signer, detail: `statement does not list input ${path}`, where };
              break;
            }
            if (sha !== undefined && got !== sha) {
              bad = { drv: p, code: 'input-hash-mismatch', resolvedDrv: rdrvPath, signer, detail: `input ${path}: statement says NAR sha256 ${got}, the verified trace of its producer says ${sha}`, where };
              break;
            }
          }
        }
        if (bad) {
          problems.push(bad);
          continue;
        }
        const outputs = new Map([...st.outputs].map(([on, o]) => [on, { path: o.path, sha256: o.sha256 }]));
        const key = claimKey(outputs);
        let claim = claims.get(key);
        if (!claim) {
          claim = { key, outputs, entries: [], fod: false };
          claims.set(key, claim);
        }
        claim.entries.push({ udrv: p, rdrvHash: h, signer, outputs, deps: depClaims.map((dc) => ({ drv: dc.drv, claim: (chosen.get(dc.drv) as Claim).key })) });
      }
    }
    results.set(p, { drv: p, name, fod: false, claims });
  };

  // children first; independent derivations concurrently (bounded), so remote caches are not read one by one
  const level = new Map<string, number>();
  for (const p of order) {
    let l = 0;
    for (const d of loader.drv(p).inputDrvs.keys()) l = Math.max(l, (level.get(d) ?? 0) + 1);
    level.set(p, l);
  }
  const byLevel: string[][] = [];
  for (const p of order) (byLevel[level.get(p) as number] ??= []).push(p);
  // within a level, keep `conc` derivations in flight (signatures verify in the thread pool)
  const conc = opts.concurrency ?? (pool ? 512 : 32);
  let done = 0;
  try {
    for (const ps of byLevel) {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < ps.length) {
          const p = ps[next++] as string;
          await processNode(p);
          if (++done % 256 === 0 || done === order.length) opts.progress?.('check', done, order.length);
        }
      };
      await Promise.all(Array.from({ length: Math.min(conc, ps.length) }, worker));
    }
  } finally {
    // always: live worker threads would keep the process from exiting
    await pool?.close();
  }

  // Top-down: a target output map, every entry reachable from it, and the trust tree at every position.
  const root = results.get(target) as NodeResult;
  const rootDrv = loader.drv(target);
  const required = opts.requiredOutputs ?? [...rootDrv.outputs.keys()];
  for (const o of required) if (!rootDrv.outputs.has(o)) throw new BuildtraceError('USAGE', `${target} has no output ${JSON.stringify(o)}`);
  const base = { target, derivationsChecked: order.length, trust: describeTrust(policy.trust), keyStatus };
  if (root.fod) {
    const out = [...root.claims.values()][0] as Claim;
    return { ...base, verified: true, outputs: { out: (out.outputs.get('out') as OutputValue).path }, signers: [], candidates: 1, problems: [] };
  }
  const candidates = new Map<string, { outputs: OutputMap; entries: Entry[] }>();
  for (const c of root.claims.values()) {
    const r = restrict(c.outputs, required);
    const k = claimKey(r);
    const cand = candidates.get(k) ?? { outputs: r, entries: [] };
    cand.entries.push(...c.entries);
    candidates.set(k, cand);
  }
  if (candidates.size === 0) {
    if (!problems.some((x) => x.drv === target)) problems.push({ drv: target, code: 'no-bundle', detail: 'the target has no signed claim from an admitted key' });
    return { ...base, verified: false, outputs: {}, signers: [], candidates: 0, problems };
  }
  const trustProblems: Problem[] = [];
  for (const cand of candidates.values()) {
    const evidence = new Map<string, Set<string>>();
    const stack = [...cand.entries];
    const seen = new Set<Entry>();
    while (stack.length > 0) {
      const e = stack.pop() as Entry;
      if (seen.has(e)) continue;
      seen.add(e);
      const set = evidence.get(e.udrv) ?? new Set<string>();
      set.add(e.signer);
      evidence.set(e.udrv, set);
      for (const d of e.deps) {
        const c = (results.get(d.drv) as NodeResult).claims.get(d.claim) as Claim;
        stack.push(...c.entries);
      }
    }
    const failing: Problem[] = [];
    for (const [u, signers] of evidence) {
      if (!satisfies(policy.trust, signers)) {
        failing.push({ drv: u, code: 'threshold-not-met', detail: `signed by {${[...signers].sort().join(', ')}}; the policy needs ${describeTrust(policy.trust)}: ${missing(policy.trust, signers)}` });
      }
    }
    if (failing.length === 0) {
      const signers = new Set<string>();
      for (const s of evidence.values()) for (const x of s) signers.add(x);
      return {
        ...base,
        verified: true,
        outputs: Object.fromEntries([...cand.outputs].map(([n, v]) => [n, v.path])),
        signers: [...signers].sort(),
        candidates: candidates.size,
        problems: [],
      };
    }
    trustProblems.push(...failing);
  }
  return { ...base, verified: false, outputs: {}, signers: [], candidates: candidates.size, problems: [...trustProblems, ...problems] };
}

/**
 * The verifying substituter's decisions: which narinfo, realisation and NAR to answer, and
 * why not. Every answer rests on `trace-verify`'s own verdict (src/verify/verdict.ts: the
 * trust verdict over the producing derivation's closure, then the last mile), on a proof
 * that the path is that derivation's output (output-proof.ts), and on an upstream narinfo
 * whose NAR hash is the attested one. HTTP is server.ts's job.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { CacheBackend } from '../cache/backend.js';
import type { ReadLimits } from '../cache/limits.js';
import { BuildtraceError, errorMessage } from '../errors.js';
import { parseNarInfo } from '../nix/narinfo.js';
import type { NixSecretKey } from '../nix/nix-key.js';
import { parseBaseName, parseStorePath, printStorePath } from '../nix/store-path.js';
import type { DrvLoader } from '../store/drv-loader.js';
import { Limiter } from '../util/limiter.js';
import { DrvHashCache } from '../nix/hash-modulo.js';
import type { Resolution } from '../nix/resolve.js';
import type { BundleCheck } from '../trace/bundle.js';
import type { CheckedLines, VerdictSeed, VerifyResult } from '../verify/closure.js';
import { CacheSource, type BundleSource } from '../verify/sources.js';
import type { PathFact } from '../verify/last-mile.js';
import { NARINFO_MAX_BYTES, NarInfoFacts, type FactSource } from '../verify/store-facts.js';
import { loadTrustPolicy, type TrustPolicy } from '../verify/trust-policy.js';
import { trustVerdict, withLastMile, type VerifyOutput } from '../verify/verdict.js';
import type { FetchedDerivations } from './fetched-derivations.js';
import type { LocalDerivations } from './local-derivations.js';
import { targetOfDrv, targetOfPath, type Target, type TargetFacts } from '../verify/target.js';
import { signedBuildTrace, signedNarInfo, signedRealisation } from './signing-key.js';
import { type DecidedOn, decidedOn, joinDecidedOn, readDigest, RecentBundles, RecentFacts, RecentReads } from './recent-reads.js';
import { StateDb, type TraceDigest } from './state-db.js';

/** Where the NAR of a served path comes from, and what it must hash to. */
export interface NarRoute {
  readonly cache: CacheBackend;
  readonly key: string;
  readonly compression: string;
  readonly fileSize: number | undefined;
  readonly narSha256: string;
  readonly narSize: number;
  readonly path: string;
}

type Refused = { readonly ok: false; readonly reason: string; readonly codes: string[] };
type Answer<T> = { readonly ok: true; readonly value: T } | Refused;

interface SubstituterOptions {
  readonly policyFile: string;
  readonly caches: readonly CacheBackend[];
  readonly limits: ReadLimits;
  readonly loader: DrvLoader;
  readonly local: LocalDerivations;
  /** The local store's facts for the last mile (what Nix already holds), when readable. */
  readonly localFacts?: FactSource | undefined;
  /** Nix's records of local paths (their recorded derivers), for the target's door. */
  readonly pathInfos: TargetFacts['pathInfos'];
  readonly state: StateDb;
  readonly key: NixSecretKey;
  readonly storeDir?: string;
  /** The `Deriver` option: fetch the .drv closure of a path with no local .drv from the caches. */
  readonly fetched?: FetchedDerivations | undefined;
  /** A cached trust verdict is re-checked against the traces at most this often (ms). */
  readonly recheckMs?: number;
  /** An upstream narinfo whose NarSize is larger is not served (default DEFAULT_MAX_NAR_BYTES). */
  readonly maxNarBytes?: number | undefined;
}

/** A seed the substituter keeps, with the lines its claims were decided on (for keeping a verdict seeded by it). */
interface KeptSeed {
  readonly seed: VerdictSeed;
  readonly decidedOn: DecidedOn;
}

/** Whole-closure verifications at once. */
const VERIFICATION_SLOTS = 2;

/** Far above any NAR in nixpkgs (a few GiB at most); a narinfo past it is a lie or needs the operator's word. */
const DEFAULT_MAX_NAR_BYTES = 64 * 2 ** 30;

const refuse = (reason: string, codes: string[]): Refused => ({ ok: false, reason, codes });

/** Paths indexed by the verified worlds they belong to (a closure's outputs each); then the index starts again. */
const MAX_WORLD_PATHS = 200_000;

/**
 * A verified target's verdict (trust and last mile) and what is needed to decide it again:
 * every path of its world may be served from it while it is no older than the recheck window.
 */
interface VerifiedWorld {
  readonly target: Target;
  readonly loader: DrvLoader;
  readonly policyDigest: string;
  readonly at: number;
  readonly v: VerifyOutput;
}

/** At most this many signature checks are kept (a few KiB each); then the memo starts again. */
const MAX_CHECKED_LINES = 50_000;
/** Resolutions kept (a resolved .drv each, a few KiB). */
const MAX_RESOLUTIONS = 50_000;

export class Substituter {
  private readonly storeDir: string;
  private policy: { readonly policy: TrustPolicy; readonly digest: string } | undefined;
  private policyStamp = '';
  /** drv -> its verdict in progress or recently re-checked */
  private readonly inFlight = new Map<string, Promise<VerifyOutput>>();
  private readonly fresh = new Map<string, { at: number; result: VerifyResult; policyDigest: string }>();
  /** What the last verdict computed here left: the next may start from it (VerifyOptions.seed, which checks policy, keys, sources and age). */
  private seed: KeptSeed | undefined;
  /** hash part -> the most recently verified world holding that path (fromVerifiedWorld) */
  private readonly worldOf = new Map<string, { path: string; world: VerifiedWorld }>();
  private readonly routes = new Map<string, NarRoute>();
  /** whole-closure verifications at once: each holds a closure's claims in memory */
  private readonly verifications = new Limiter(VERIFICATION_SLOTS);
  /** signature checks across verifications (cleared with the policy; see CheckedLines) */
  private readonly checked = new Map<string, BundleCheck>();
  private readonly checkedLines: CheckedLines = {
    get: (k) => this.checked.get(k),
    set: (k, c) => {
      if (this.checked.size >= MAX_CHECKED_LINES) this.checked.clear();
      this.checked.set(k, c);
    },
  };
  private readonly recentBundles = new RecentReads<string[]>(() => this.recheckMs);
  private readonly recentFacts = new RecentReads<PathFact | null>(() => this.recheckMs);
  /** static resolutions by .drv path (VerifyOptions.resolutions), at most MAX_RESOLUTIONS */
  private readonly resolutions = new Map<string, Pick<Resolution, 'drv' | 'path'>>();
  /** hashes modulo of local .drv files (each checked against its path when loaded), for the target's door */
  private readonly hashes: DrvHashCache;
  readonly cacheUrls: string[];
  private readonly maxNarBytes: number;

  constructor(private readonly o: SubstituterOptions) {
    this.storeDir = o.storeDir ?? '/nix/store';
    this.maxNarBytes = o.maxNarBytes ?? DEFAULT_MAX_NAR_BYTES;
    this.cacheUrls = o.caches.map((c) => c.url);
    this.hashes = new DrvHashCache((d) => {
      if (!o.local.has(d)) throw new BuildtraceError('TARGET_REFUSED', `input derivation ${d} is not in the store`, { subject: d });
      return o.loader.drv(d);
    }, this.storeDir);
    this.currentPolicy();
  }

  private boundedResolutions(): Map<string, Pick<Resolution, 'drv' | 'path'>> {
    if (this.resolutions.size > MAX_RESOLUTIONS) this.resolutions.clear();
    return this.resolutions;
  }

  private get recheckMs(): number {
    return this.o.recheckMs ?? 10_000;
  }

  /** The policy as the file says now: an edit takes effect (and invalidates cached verdicts) at the next request. */
  currentPolicy(): { readonly policy: TrustPolicy; readonly digest: string } {
    // read again only when the file's identity, size or times changed (a request each: a
    // closure's worth of reads otherwise); any write or replacement changes ctime or inode
    const st = statSync(this.o.policyFile, { bigint: true });
    const stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    if (this.policy && stamp === this.policyStamp) return this.policy;
    const bytes = readFileSync(this.o.policyFile);
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (this.policy?.digest !== digest) {
      this.policy = { policy: loadTrustPolicy(this.o.policyFile), digest };
      this.fresh.clear();
      this.worldOf.clear();
      this.checked.clear();
      this.seed = undefined;
    }
    this.policyStamp = stamp;
    return this.policy as { policy: TrustPolicy; digest: string };
  }

  /** Fresh per verification: a CacheSource stops reading after its first failure, which must not outlive one verdict. */
  private sources(): { sources: RecentBundles[]; facts: FactSource[] } {
    const caches = this.o.caches.map((c) => new CacheSource(c, { limits: this.o.limits }));
    const sources = caches.map((c) => new RecentBundles(c, this.recentBundles));
    const facts: FactSource[] = caches.map((s) => new RecentFacts(new NarInfoFacts(s, this.storeDir), this.recentFacts));
    if (this.o.localFacts) facts.push(this.o.localFacts);
    return { sources, facts };
  }

  /** The rdrv hashes a trust verdict rests on (verified) or failed at (refused). */
  private static decidingHashes(r: VerifyResult): string[] {
    const rdrvs = r.verified ? r.entries.map((e) => e.resolvedDrv) : r.problems.flatMap((p) => (p.resolvedDrv ? [p.resolvedDrv] : []));
    return [...new Set(rdrvs.map((p) => parseStorePath(p).hashPart))].sort();
  }

  /** Digests of what `sources` read now (through the window), for comparing with a kept verdict's. */
  private static async digests(hashes: readonly string[], sources: readonly BundleSource[]): Promise<TraceDigest[]> {
    return Promise.all(
      hashes.map(async (hash) => {
        const read: string[][] = [];
        for (const s of sources) read.push(await s.bundles(hash));
        return { hash, digest: readDigest(read) };
      }),
    );
  }

  /** `trace-verify`'s verdict for one derivation: the trust part from the verdict cache while its traces are unchanged, the last mile always fresh. */
  verdict(target: Target, loader = this.o.loader): Promise<VerifyOutput> {
    const id = JSON.stringify([target.drv, target.outputs ?? null, [...target.paths]]);
    const have = this.inFlight.get(id);
    if (have) return have;
    const p = this.verdictNow(target, id, loader).finally(() => this.inFlight.delete(id));
    this.inFlight.set(id, p);
    return p;
  }

  private async verdictNow(target: Target, id: string, loader: DrvLoader): Promise<VerifyOutput> {
    const drv = target.drv;
    const { policy, digest } = this.currentPolicy();
    const { sources, facts } = this.sources();
    const key = StateDb.verdictKey(id, digest, this.cacheUrls);
    let result: VerifyResult | undefined;
    /** When the reads this answer rests on began (its recheck window starts then); undefined: taken from the window. */
    let checkedAt: number | undefined;
    const f = this.fresh.get(id);
    if (f && f.policyDigest === digest && Date.now() - f.at < this.recheckMs) result = f.result;
    if (!result) {
      const cached = this.o.state.cachedVerdict(key);
      if (cached) {
        // read through sources of its own: these reads decide nothing of a verification that may follow
        const now = await Substituter.digests(
          cached.traces.map((t) => t.hash),
          this.sources().sources,
        );
        if (now.every((t, i) => t.digest === cached.traces[i]?.digest)) {
          result = cached.result;
          checkedAt = Date.now();
          this.o.state.count('verdictsReused');
        }
      }
    }
    if (!result) {
      // a request waits for a slot at most as long as one upstream read may take: slow traces
      // holding both slots must not queue every other request behind them without end
      const maxMs = this.o.limits.requestTimeoutMs;
      const tooLong = (waited: number): BuildtraceError =>
        new BuildtraceError(
          'LIMIT_EXCEEDED',
          `no verification slot came free within ${waited} ms (limit requestTimeoutMs, ${maxMs} ms: ${VERIFICATION_SLOTS} verifications at once, all held by slower ones); not verified, ask again later`,
          { subject: drv },
        );
      let seed: KeptSeed | undefined;
      let leftSeed: VerdictSeed | undefined;
      let startedAt = 0;
      result = await this.verifications.run(
        () => {
          startedAt = Date.now();
          // taken once a slot is free, no older than the recheck window (--recheck-seconds):
          // the claims it settled are reads of that age
          seed = this.seed && startedAt - this.seed.seed.madeAt < this.recheckMs ? this.seed : undefined;
          return trustVerdict(drv, {
            policy,
            sources,
            facts,
            loader,
            limits: this.o.limits,
            requiredOutputs: target.outputs,
            requiredPaths: target.paths.size > 0 ? target.paths : undefined,
            checkedLines: this.checkedLines,
            resolutions: this.boundedResolutions(),
            poolAfterWalk: true,
            ...(seed ? { seed: seed.seed } : {}),
            onSeed: (s) => {
              leftSeed = s;
            },
          });
        },
        { maxMs, tooLong },
      );
      this.o.state.count('verdictsComputed');
      // the lines it was decided on: what this verification read, and for a seeded verdict also
      // what its seed's claims were decided on (it did not read those again)
      let lines: DecidedOn = decidedOn(sources);
      if (result.seededAt !== undefined) lines = seed ? joinDecidedOn(seed.decidedOn, lines) : new Map();
      // a seed left by a slower verification never replaces a newer one, nor one of another policy
      if (leftSeed && leftSeed.policy === this.policy?.policy && !(this.seed && this.seed.seed.madeAt > leftSeed.madeAt)) {
        this.seed = { seed: leftSeed, decidedOn: lines };
      }
      this.keep(key, drv, digest, result, lines);
      // a seeded verdict rests on the seed's reads: its window starts when the seed's run started
      checkedAt = result.seededAt ?? startedAt;
    }
    // only a verdict just checked against the traces starts a window (its own and its world's):
    // reusing one from the window must not stretch it (a path asked for every few seconds would
    // never be re-checked)
    const at = checkedAt ?? (f as { at: number }).at;
    if (checkedAt !== undefined) this.fresh.set(id, { at, result, policyDigest: digest });
    const out = await withLastMile(result, facts, false, []);
    if (out.verified) this.remember({ target, loader, policyDigest: digest, at, v: out });
    return out;
  }

  /**
   * Keeps a verdict (for a restart, or the window's end) keyed on exactly the lines it was
   * decided on. Not kept: one decided partly on lines not known exactly (a digest of a later
   * read would let an old verdict pass for one decided on the new lines), and a refusal with a
   * problem that names no trace (no digest covers what it rests on: it would be reused however
   * the caches change).
   */
  private keep(key: string, drv: string, policyDigest: string, result: VerifyResult, lines: DecidedOn): void {
    const traces = Substituter.decidingHashes(result).map((hash) => ({ hash, digest: lines.get(hash) }));
    const keyed = traces.every((t): t is TraceDigest => typeof t.digest === 'string') && (result.verified || result.problems.every((p) => p.resolvedDrv));
    if (keyed) this.o.state.storeVerdict(key, drv, policyDigest, this.cacheUrls, { result, traces });
    else this.o.state.storeHints(result);
  }

  /** Indexes a verified world by its paths that some derivation of the closure produces (a source is never served). */
  private remember(world: VerifiedWorld): void {
    const paths = Object.entries(world.v.world);
    if (this.worldOf.size + paths.length > MAX_WORLD_PATHS) this.worldOf.clear();
    const start = this.storeDir.length + 1;
    for (const [path, att] of paths) if (att.producerDrv !== undefined) this.worldOf.set(path.slice(start, start + 32), { path, world });
  }

  /**
   * A path of a world verified within the recheck window is served from that world, without a
   * verdict of its own: its producer's closure is part of the verified closure, so the choices
   * of that world restricted to it are a verified world of the path's own target (DESIGN.md,
   * trust semantics: every derivation's chosen claim satisfies the policy and the resolutions
   * agree; nothing of that depends on what lies above it). Serving each path of one closure from
   * one world also keeps what Nix installs consistent where a 1-of-n policy admits several. An
   * expired world is decided again as a whole (its verdict cache row, its traces re-read).
   */
  private async fromVerifiedWorld(hashPart: string): Promise<Answer<{ text: string; route: NarRoute }> | undefined> {
    let hit = this.worldOf.get(hashPart);
    if (!hit) return undefined;
    const { digest } = this.currentPolicy();
    const current = (w: VerifiedWorld): boolean => w.policyDigest === digest && Date.now() - w.at < this.recheckMs;
    if (!current(hit.world)) {
      const again = await this.verdict(hit.world.target, hit.world.loader).catch(() => undefined);
      hit = again?.verified ? this.worldOf.get(hashPart) : undefined;
      if (!hit || !current(hit.world)) return undefined;
    }
    const { path, world } = hit;
    const drv = world.v.world[path]?.producerDrv as string;
    const served = await this.serveVerified(path, drv, world.v);
    if (served.ok) {
      this.o.state.count('served');
      this.o.state.count('servedFromWorld');
    } else this.o.state.refusal(path, drv, served.codes, served.reason);
    return served;
  }

  /** The producers that may have made a path with this hash part: local `.drv` declarations, then hints from verified worlds. */
  private candidates(hashPart: string): { drv: string; path: string }[] {
    const out: { drv: string; path: string }[] = [];
    for (const d of this.o.local.declaring(hashPart)) {
      const o = this.o.loader.drv(d.drv).outputs.get(d.output);
      if (o?.path) out.push({ drv: d.drv, path: o.path });
    }
    for (const h of this.o.state.hints(this.storeDir, hashPart)) if (!out.some((c) => c.drv === h.drv)) out.push(h);
    return out;
  }

  /** The door's view: the candidate is the path's deriver (a hint the door checks), the rest as Nix recorded it. */
  private doorFacts(path: string, deriver: string, loader?: DrvLoader): TargetFacts {
    return {
      pathInfos: async (paths) => {
        const m = new Map(await this.o.pathInfos(paths.filter((p) => p !== path)));
        if (paths.includes(path)) m.set(path, { deriver });
        return m;
      },
      ...(loader ? {} : { hashes: this.hashes }),
      derivation: (d) => {
        if (!loader) return this.o.local.has(d) ? this.o.loader.drv(d) : undefined;
        try {
          return loader.drv(d);
        } catch {
          return undefined;
        }
      },
    };
  }

  /** `GET /<hashPart>.narinfo`. */
  async narinfo(hashPart: string): Promise<Answer<{ text: string; route: NarRoute }>> {
    const fromWorld = await this.fromVerifiedWorld(hashPart);
    if (fromWorld) return fromWorld;
    const cands: { drv: string; path: string; loader?: DrvLoader | undefined }[] = this.candidates(hashPart);
    // a hint left by an earlier answer may name a .drv that was fetched, not local: read it from there again
    if (this.o.fetched) for (const c of cands) if (!this.o.local.has(c.drv)) c.loader = await this.o.fetched.closure(c.drv).catch(() => undefined);
    if (cands.length === 0 && this.o.fetched) {
      let named: Awaited<ReturnType<FetchedDerivations['deriverOf']>>;
      try {
        named = await this.o.fetched.deriverOf(hashPart);
      } catch (err) {
        const r = refuse(errorMessage(err), [err instanceof BuildtraceError ? err.code : 'CACHE_ERROR']);
        this.o.state.refusal(`${this.storeDir}/${hashPart}`, undefined, r.codes, r.reason);
        return r;
      }
      if (named) {
        try {
          cands.push({ ...named, loader: await this.o.fetched.closure(named.drv) });
        } catch (err) {
          const r = refuse(`${named.drv} (the cache's Deriver: for ${named.path}): ${errorMessage(err)}`, ['derivation-unreadable']);
          this.o.state.refusal(named.path, named.drv, r.codes, r.reason);
          return r;
        }
      }
    }
    if (cands.length === 0) {
      const why = this.o.fetched ? 'and no cache names a Deriver for it' : '(the Deriver option is off)';
      return refuse(`no local derivation is known to produce a path with hash ${hashPart} ${why}`, ['no-derivation']);
    }
    let last: Refused | undefined;
    const refused = (r: Refused, path: string, drv: string): void => {
      last = r;
      this.o.state.refusal(path, drv, r.codes, r.reason);
    };
    for (const c of cands) {
      let v: VerifyOutput;
      try {
        v = await this.verdict(await targetOfPath(c.path, this.doorFacts(c.path, c.drv, c.loader), this.storeDir), c.loader);
      } catch (err) {
        refused(refuse(`${c.drv}: ${errorMessage(err)}`, [err instanceof BuildtraceError ? err.code : 'INTERNAL']), c.path, c.drv);
        continue;
      }
      if (!v.verified) {
        const lines = v.problems.slice(0, 5).map((p) => `${p.drv}: ${p.code}: ${p.detail}`);
        refused(refuse(`${c.drv} does not verify: ${lines.join(' | ')}`, [...new Set(v.problems.map((p) => p.code))]), c.path, c.drv);
        continue;
      }
      const served = await this.serveVerified(c.path, c.drv, v);
      if (!served.ok) refused(served, c.path, c.drv);
      else this.o.state.count('served');
      return served;
    }
    return last ?? refuse(`nothing verified for ${hashPart}`, ['no-derivation']);
  }

  /** A narinfo for a path of a verified world, from the first upstream whose narinfo carries the attested NAR hash. */
  private async serveVerified(path: string, drv: string, v: VerifyOutput): Promise<Answer<{ text: string; route: NarRoute }>> {
    const att = v.world[path];
    const checkedByCa = v.lastMile?.checked.find((c) => c.path === path)?.contentAddress !== undefined;
    if (!att || (att.narSha256 === undefined && !checkedByCa)) return refuse(`${path}: no verified claim attests its NAR hash`, ['unattested-path']);
    const hashPart = path.slice(this.storeDir.length + 1, this.storeDir.length + 33);
    const why: string[] = [];
    // upstreams passed over only for NarSize past the bound: the refusal is the bound's, not a content mismatch
    let overLimit = 0;
    for (const cache of this.o.caches) {
      let ni: ReturnType<typeof parseNarInfo>;
      try {
        const o = await cache.get(`${hashPart}.narinfo`, { maxBytes: NARINFO_MAX_BYTES });
        if (!o) continue;
        ni = parseNarInfo(o.body.toString('utf8'), this.storeDir, `${cache.url}/${hashPart}.narinfo`);
      } catch (err) {
        why.push(`${cache.url}: ${errorMessage(err)}`);
        continue;
      }
      // NarSize is not attested (the hash is, and the NAR stream checks both): past the bound,
      // it would only stretch the NAR's deadline and let an endless body through to Nix's disk
      if (ni.narSize > this.maxNarBytes) {
        why.push(`${cache.url}/${hashPart}.narinfo: NarSize ${ni.narSize} is past the limit maxNarBytes (${this.maxNarBytes}; --max-nar-bytes)`);
        overLimit++;
        continue;
      }
      const hex = Buffer.from(ni.narHash.bytes).toString('hex');
      if (ni.storePath !== path || ni.narHash.algo !== 'sha256' || (att.narSha256 !== undefined && hex !== att.narSha256)) {
        why.push(`${cache.url}: its narinfo does not carry the attested NAR hash`);
        continue;
      }
      const references = ni.references.map((r) => printStorePath(parseBaseName(r, this.storeDir))).sort();
      const stray = references.filter((r) => r !== path && !(r in v.world));
      if (stray.length > 0) {
        why.push(`${cache.url}: references ${stray.join(', ')}, which no verified claim attests`);
        continue;
      }
      const route: NarRoute = {
        cache,
        key: ni.url,
        compression: ni.compression,
        fileSize: ni.fileSize,
        narSha256: hex,
        narSize: ni.narSize,
        path,
      };
      this.routes.set(hashPart, route);
      const text = signedNarInfo(this.o.key, {
        storePath: path,
        url: `nar/${hashPart}.nar`,
        narSha256Hex: hex,
        narSize: ni.narSize,
        references,
        deriver: drv,
        ca: ni.ca,
      });
      return { ok: true, value: { text, route } };
    }
    const limit = why.length > 0 && overLimit === why.length;
    return refuse(`${path}: no upstream cache serves the attested content${why.length ? `: ${why.join('; ')}` : ''}`, [
      limit ? 'LIMIT_EXCEEDED' : 'content-mismatch',
    ]);
  }

  /** `GET /nar/<hashPart>.nar`: the route a narinfo answer set up (decided again after a restart). */
  async narRoute(hashPart: string): Promise<NarRoute | undefined> {
    const r = this.routes.get(hashPart);
    if (r) return r;
    const a = await this.narinfo(hashPart);
    return a.ok ? a.value.route : undefined;
  }

  /** A local derivation's verdict as the target; a refusal (kept for status under `shown`) when it does not verify. */
  private async verifiedDrv(d: string, id: string, shown: string): Promise<Answer<VerifyOutput>> {
    const v = await targetOfDrv(d, this.doorFacts('', d))
      .then((t) => this.verdict(t))
      .catch((err: unknown) => err as Error);
    if (v instanceof Error) return refuse(`${d}: ${errorMessage(v)}`, [v instanceof BuildtraceError ? v.code : 'INTERNAL']);
    if (v.verified) return { ok: true, value: v };
    const codes = [...new Set(v.problems.map((p) => p.code))];
    const r = refuse(
      `${d} (${id}) does not verify: ${v.problems
        .slice(0, 3)
        .map((p) => `${p.code}: ${p.detail}`)
        .join(' | ')}`,
      codes,
    );
    this.o.state.refusal(shown, d, codes, r.reason);
    return r;
  }

  /**
   * `GET /build-trace-v2/<resolved drv>/<output>.doi` (Nix >= 2.35; untested against a real
   * Nix, none exists here): a local derivation of that name verifies, and the resolved
   * derivation its verified claim rests on is the one asked for.
   */
  async buildTrace(rdrvBaseName: string, output: string): Promise<Answer<string>> {
    const rdrv = `${this.storeDir}/${rdrvBaseName}`;
    const name = parseStorePath(rdrv, this.storeDir).name;
    const id = `${rdrv}^${output}`;
    let last: Refused = refuse(`no local derivation named ${name} resolves to ${rdrv}`, ['no-derivation']);
    for (const d of this.o.local.unresolvedNamed(name)) {
      const v = await this.verifiedDrv(d, id, id);
      if (!v.ok) {
        last = v;
        continue;
      }
      // another derivation of the same name, or the same one resolved against other inputs
      if (!v.value.entries.some((e) => e.drv === d && e.resolvedDrv === rdrv)) continue;
      const out = v.value.outputs[output];
      if (out === undefined) {
        last = refuse(`${d} verifies but has no output ${output}`, ['not-target']);
        continue;
      }
      return { ok: true, value: signedBuildTrace(this.o.key, rdrvBaseName, output, out) };
    }
    return last;
  }

  /** `GET /realisations/sha256:<hex>!<output>.doi` (Nix < 2.35): only from a verified world. */
  async realisation(hashHex: string, output: string): Promise<Answer<string>> {
    const id = `sha256:${hashHex}!${output}`;
    const cands = this.o.local.realisationCandidates(hashHex);
    if (cands.length === 0) return refuse(`no local derivation has realisation id ${id}`, ['no-derivation']);
    let last: Refused = refuse(`no derivation for ${id} verifies`, ['no-derivation']);
    for (const d of cands) {
      const v = await this.verifiedDrv(d, id, `${d}!${output}`);
      if (!v.ok) {
        last = v;
        continue;
      }
      const out = v.value.outputs[output];
      if (out === undefined) {
        last = refuse(`${d} (${id}) verifies but has no output ${output}`, ['not-target']);
        this.o.state.refusal(`${d}!${output}`, d, last.codes, last.reason);
        continue;
      }
      return { ok: true, value: signedRealisation(this.o.key, id, out) };
    }
    return last;
  }
}

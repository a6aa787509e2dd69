/**
 * Reads from the substituter's sources reused within the recheck window (RecentReads), and
 * the sources seen through it: a cache's bundles and a source's narinfo facts.
 */
import type { PathFact } from '../verify/last-mile.js';
import type { BundleSource, CacheSource } from '../verify/sources.js';
import type { FactSource } from '../verify/store-facts.js';
import { linesDigest } from './state-db.js';

/**
 * What a source said within the recheck window, reused instead of read again: the same
 * staleness a cached verdict already has (it is re-checked against the traces at most every
 * recheckMs), applied to each resolved derivation's bundles and each path's narinfo facts, so
 * that a new top-level derivation over a verified closure does not read the whole closure
 * again. What is served is always read fresh: the served narinfo (serveVerified) and the NAR.
 */
export class RecentReads<T> {
  private readonly m = new Map<string, { at: number; value: T }>();
  constructor(private readonly windowMs: () => number) {}
  get(key: string): T | undefined {
    const e = this.m.get(key);
    if (!e) return undefined;
    if (Date.now() - e.at < this.windowMs()) return e.value;
    this.m.delete(key);
    return undefined;
  }
  set(key: string, value: T): void {
    // entries older than the window are dropped as the map is walked in insertion order
    for (const [k, e] of this.m) {
      if (Date.now() - e.at < this.windowMs()) break;
      this.m.delete(k);
    }
    this.m.delete(key);
    this.m.set(key, { at: Date.now(), value });
  }
  clear(): void {
    this.m.clear();
  }
}

/**
 * A cache's bundles as one verification reads them, through RecentReads. It keeps every read
 * it handed out: a verdict kept for later is keyed on the lines it was decided on (DecidedOn),
 * never on a later read of them (a read that left the window in between, or a seeded verdict
 * that never read what its seed settled, would pair an old decision with new lines).
 */
export class RecentBundles implements BundleSource {
  readonly name: string;
  /** The distinct arrays handed out, by hash (more than one only if the window ended between two reads). */
  private readonly handedOut = new Map<string, string[][]>();
  constructor(
    private readonly inner: CacheSource,
    private readonly recent: RecentReads<string[]>,
  ) {
    this.name = inner.name;
  }
  async bundles(hash: string): Promise<string[]> {
    const key = `${this.name}\0${hash}`;
    let lines = this.recent.get(key);
    if (!lines) {
      lines = await this.inner.bundles(hash);
      this.recent.set(key, lines);
    }
    const reads = this.handedOut.get(hash);
    if (!reads) this.handedOut.set(hash, [lines]);
    else if (!reads.includes(lines)) reads.push(lines);
    return lines;
  }
  /** Every read handed out for `hash` (undefined: never asked, or the read failed). */
  reads(hash: string): readonly string[][] | undefined {
    return this.handedOut.get(hash);
  }
  /** Every hash this source handed lines out for. */
  asked(): IterableIterator<string> {
    return this.handedOut.keys();
  }
  keyEvidence(fp: string): ReturnType<CacheSource['keyEvidence']> {
    return this.inner.keyEvidence(fp);
  }
  traceEvidence(hash: string): ReturnType<CacheSource['traceEvidence']> {
    return this.inner.traceEvidence(hash);
  }
}

/** A source's narinfo facts for the last mile, through RecentReads (a source's error is never kept). */
export class RecentFacts implements FactSource {
  readonly name: string;
  constructor(
    private readonly inner: FactSource,
    private readonly recent: RecentReads<PathFact | null>,
  ) {
    this.name = inner.name;
  }
  async facts(paths: readonly string[]): Promise<Map<string, PathFact | Error>> {
    const out = new Map<string, PathFact | Error>();
    const read: string[] = [];
    for (const p of paths) {
      const had = this.recent.get(`${this.name}\0${p}`);
      if (had === undefined) read.push(p);
      else if (had !== null) out.set(p, had);
    }
    if (read.length === 0) return out;
    const got = await this.inner.facts(read);
    for (const p of read) {
      const f = got.get(p);
      if (f instanceof Error) out.set(p, f);
      else {
        this.recent.set(`${this.name}\0${p}`, f ?? null);
        if (f) out.set(p, f);
      }
    }
    return out;
  }
}

/**
 * The trace lines a verdict was decided on, as digests by resolved-derivation hash: a string
 * for lines known exactly, null where they are not (two reads differed, or a source failed to
 * read them). A hash absent was never read, so nothing rests on it.
 */
export type DecidedOn = ReadonlyMap<string, string | null>;

/** linesDigest by the arrays RecentReads keeps (one source, the usual case: each digested once). */
const digested = new WeakMap<string[], string>();

/** The digest of one read per source, in the sources' order (what a kept verdict is keyed on). */
export function readDigest(read: readonly string[][]): string {
  const one = read.length === 1 ? (read[0] as string[]) : undefined;
  const known = one && digested.get(one);
  if (known) return known;
  const digest = linesDigest(read.flat());
  if (one) digested.set(one, digest);
  return digest;
}

/** What one verification was handed through `sources` (one RecentBundles per cache, in order). */
export function decidedOn(sources: readonly RecentBundles[]): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const hash of new Set(sources.flatMap((s) => [...s.asked()]))) {
    const perSource: string[][] = [];
    for (const s of sources) {
      const reads = s.reads(hash);
      // unread by one source (its read failed), or two reads that differ: not known exactly
      if (!reads || new Set(reads.map((r) => readDigest([r]))).size > 1) break;
      perSource.push(reads[0] as string[]);
    }
    out.set(hash, perSource.length === sources.length ? readDigest(perSource) : null);
  }
  return out;
}

/** Two verifications' lines as one (a seeded verdict's own and its seed's): a hash they disagree on, or either does not know exactly, is not known exactly. */
export function joinDecidedOn(a: DecidedOn, b: DecidedOn): Map<string, string | null> {
  const out = new Map(a);
  for (const [hash, d] of b) out.set(hash, out.has(hash) && out.get(hash) !== d ? null : d);
  return out;
}

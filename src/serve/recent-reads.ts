/**
 * Reads from the substituter's sources reused within the recheck window (RecentReads), and
 * the sources seen through it: a cache's bundles and a source's narinfo facts.
 */
import type { PathFact } from '../verify/last-mile.js';
import type { BundleSource, CacheSource } from '../verify/sources.js';
import type { FactSource } from '../verify/store-facts.js';

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
 * A cache's bundles as one verification reads them, through RecentReads. It keeps what it
 * handed out (`used`): a verdict kept for later is keyed on the lines it was decided on, never
 * on a later read of them (a read that left the window between the two, or a seeded verdict
 * that never read what its seed settled, would pair an old decision with new lines).
 */
export class RecentBundles implements BundleSource {
  readonly name: string;
  private readonly handedOut = new Map<string, string[] | 'differed'>();
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
    const before = this.handedOut.get(hash);
    if (before === undefined) this.handedOut.set(hash, lines);
    else if (before !== lines && (before === 'differed' || before.join('\n') !== lines.join('\n'))) this.handedOut.set(hash, 'differed');
    return lines;
  }
  /** The lines this source handed out for `hash`; undefined if it never read them or two reads differed. */
  used(hash: string): string[] | undefined {
    const u = this.handedOut.get(hash);
    return u === 'differed' ? undefined : u;
  }
  /** Every hash this source was asked for. */
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

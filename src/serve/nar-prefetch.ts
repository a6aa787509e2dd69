/**
 * Small NARs read, decompressed and checked as soon as their narinfo is answered, then held in
 * memory until Nix asks for them. Nix asks for a closure's narinfos many at a time, then
 * substitutes path by path (Nix 2.8 with --max-jobs 0: one at a time), so for a closure of
 * small paths the time each NAR takes to arrive adds up; read ahead, it is only a copy out of
 * memory. Nothing changes in what is served: the bytes passed the same check against the
 * attested NAR hash and size as a streamed NAR (nar-stream.ts), and are handed out only for
 * a route with that same hash, at most once, within `keepMs`. Bounded: NARs up to `maxNarBytes`,
 * `maxTotalBytes` held or reserved at once, `concurrency` reads at once; a read that fails is
 * simply dropped (the NAR request then streams it and reports the failure).
 */
import { Limiter } from '../util/limiter.js';
import type { NarRoute } from './substituter.js';

interface Held {
  readonly narSha256: string;
  readonly size: number;
  readonly at: number;
  /** the checked bytes once read; null when the read failed; undefined while reading */
  result?: Buffer | null;
}

interface NarPrefetchOptions {
  readonly maxNarBytes: number;
  readonly maxTotalBytes: number;
  readonly keepMs: number;
  readonly concurrency: number;
  /** The checked NAR of a route (what a streamed answer would send), or an error. */
  readonly read: (route: NarRoute) => Promise<Buffer>;
}

export class NarPrefetch {
  private readonly held = new Map<string, Held>();
  private reserved = 0;
  private readonly reads: Limiter;

  constructor(private readonly o: NarPrefetchOptions) {
    this.reads = new Limiter(o.concurrency);
  }

  /** Starts reading a route's NAR when it is small and there is room; no-op otherwise. */
  start(hashPart: string, route: NarRoute): void {
    this.sweep();
    const had = this.held.get(hashPart);
    if (had?.narSha256 === route.narSha256) return;
    if (route.narSize > this.o.maxNarBytes || this.reserved + route.narSize > this.o.maxTotalBytes) return;
    if (had) this.drop(hashPart, had);
    this.reserved += route.narSize;
    const h: Held = { narSha256: route.narSha256, size: route.narSize, at: Date.now() };
    this.held.set(hashPart, h);
    this.reads
      .run(() => this.o.read(route))
      .then(
        (b) => {
          h.result = b;
        },
        () => {
          // a failed read gives its room back at once
          h.result = null;
          this.drop(hashPart, h);
        },
      );
  }

  /**
   * The checked bytes for this route, once, if they are already read (undefined: not read
   * ahead, still reading, failed, expired, or another hash). Never waits: a read held up by a
   * slow upstream must not hold up the request, which streams the NAR itself instead.
   */
  take(hashPart: string, route: NarRoute): Buffer | undefined {
    const h = this.held.get(hashPart);
    if (!h) return undefined;
    this.drop(hashPart, h);
    if (h.narSha256 !== route.narSha256 || Date.now() - h.at >= this.o.keepMs) return undefined;
    return h.result ?? undefined;
  }

  private drop(hashPart: string, h: Held): void {
    if (this.held.get(hashPart) !== h) return;
    this.held.delete(hashPart);
    this.reserved -= h.size;
  }

  /** Entries older than keepMs go (Nix did not ask, or asked elsewhere); the map is in insertion order. */
  private sweep(): void {
    for (const [k, h] of this.held) {
      if (Date.now() - h.at < this.o.keepMs) break;
      this.drop(k, h);
    }
  }
}

/**
 * Gathers what the named caches (their narinfo files) and the local Nix database say about
 * the store paths the last mile decides (last-mile.ts holds the rules). Each path is asked of
 * each source once; reads of a cache go through its own limiter.
 */
import { BuildtraceError, errorMessage } from '../errors.js';
import type { CacheObject } from '../cache/backend.js';
import { formatHash, type Hash } from '../nix/hash.js';
import { parseNarInfo } from '../nix/narinfo.js';
import { parseStorePath, printStorePath, parseBaseName } from '../nix/store-path.js';
import type { PathAnswers, PathFact, World } from './last-mile.js';

/** One place that may know store paths. */
export interface FactSource {
  readonly name: string;
  /** The source's view of each path it knows; an Error where it cannot say; paths it does not know are absent. */
  facts(paths: readonly string[]): Promise<Map<string, PathFact | Error>>;
}

/** Per path, concurrently (each source bounds its own reads). */
async function eachPath(paths: readonly string[], fact: (p: string) => Promise<PathFact | undefined>): Promise<Map<string, PathFact | Error>> {
  const out = new Map<string, PathFact | Error>();
  await Promise.all(
    paths.map((p) =>
      fact(p).then(
        (f) => void (f && out.set(p, f)),
        (err: unknown) => void out.set(p, err instanceof Error ? err : new Error(String(err))),
      ),
    ),
  );
  return out;
}

/** A narinfo far beyond any real one (a path with 15,000 references) is refused unread. */
export const NARINFO_MAX_BYTES = 1 << 20;

function hex(h: Hash, subject: string): string {
  if (h.algo !== 'sha256') throw new BuildtraceError('NARINFO_INVALID', `${subject}: NAR hash is ${h.algo}, not sha256`, { subject });
  return formatHash(h, 'base16', false);
}

/** What a cache offers the last mile: CacheSource (sources.ts), so narinfo reads share its limiter, bounds and fail-fast. */
interface ObjectReader {
  readonly name: string;
  readObject(key: string, maxBytes: number): Promise<CacheObject | undefined>;
  /** Keys surely absent, answered for a batch at once (a local cache); the rest are read. */
  absentObjects?(keys: readonly string[]): ReadonlySet<string>;
}

/** A binary cache's `<hash part>.narinfo`. */
export class NarInfoFacts implements FactSource {
  readonly name: string;
  constructor(
    private readonly cache: ObjectReader,
    private readonly storeDir = '/nix/store',
  ) {
    this.name = cache.name;
  }

  async facts(paths: readonly string[]): Promise<Map<string, PathFact | Error>> {
    const keys = new Map<string, string>();
    for (const p of paths) {
      try {
        keys.set(p, this.key(p));
      } catch {
        // not a store path: fact() reports it
      }
    }
    let absent: ReadonlySet<string> = new Set();
    try {
      absent = this.cache.absentObjects?.([...keys.values()]) ?? absent;
    } catch {
      // the cache already failed: each read below says so
    }
    // a path whose narinfo is surely absent needs no read (most of a closure, in most caches)
    const unknown = (p: string): boolean => {
      const key = keys.get(p);
      return key === undefined || !absent.has(key);
    };
    return eachPath(absent.size === 0 ? paths : paths.filter(unknown), (p) => this.fact(p, keys.get(p)));
  }

  private key(path: string): string {
    return `${parseStorePath(path, this.storeDir).hashPart}.narinfo`;
  }

  /** `key`: the path's narinfo key when already known; otherwise derived here, where a bad path becomes this path's error. */
  private async fact(path: string, known: string | undefined): Promise<PathFact | undefined> {
    const key = known ?? this.key(path);
    // absent (404, and 403 as Nix reads it) is undefined; a failed read fails every later one of this cache at once
    const o = await this.cache.readObject(key, NARINFO_MAX_BYTES);
    if (!o) return undefined;
    const subject = `${this.name}/${key}`;
    const ni = parseNarInfo(o.body.toString('utf8'), this.storeDir, subject);
    // a narinfo under this hash part that describes another path is no answer for this one
    if (ni.storePath !== path) throw new BuildtraceError('NARINFO_INVALID', `${subject}: describes ${ni.storePath}, not ${path}`, { subject });
    return {
      path,
      narSha256: hex(ni.narHash, subject),
      narSize: ni.narSize,
      references: ni.references.map((r) => printStorePath(parseBaseName(r, this.storeDir))),
      ...(ni.ca !== undefined ? { ca: ni.ca } : {}),
      where: this.name,
    };
  }
}

/** What the local store needs to answer: daemon/store-info.ts's NixDbStoreInfo (Nix's db.sqlite, read-only). */
interface PathInfoReader {
  pathInfos(
    paths: readonly string[],
  ): Promise<Map<string, { readonly narHash: Hash; readonly narSize: number; readonly references: readonly string[]; readonly ca?: string }>>;
}

/** The local Nix database: ValidPaths (hash `sha256:<hex>`, narSize, ca) and Refs. */
export class LocalStoreFacts implements FactSource {
  constructor(
    private readonly store: PathInfoReader,
    readonly name: string,
  ) {}

  /** One batch: the database answers synchronously, so no promise per path. */
  async facts(paths: readonly string[]): Promise<Map<string, PathFact | Error>> {
    const out = new Map<string, PathFact | Error>();
    let infos: Awaited<ReturnType<PathInfoReader['pathInfos']>>;
    try {
      infos = await this.store.pathInfos(paths);
    } catch (err) {
      for (const p of paths) out.set(p, err instanceof Error ? err : new Error(String(err)));
      return out;
    }
    for (const [path, i] of infos) {
      try {
        out.set(path, {
          path,
          narSha256: hex(i.narHash, `${this.name} ${path}`),
          narSize: i.narSize,
          references: i.references,
          ...(i.ca ? { ca: i.ca } : {}),
          where: this.name,
        });
      } catch (err) {
        out.set(path, err as Error);
      }
    }
    return out;
  }
}

/**
 * Asks every source about every path of the world. That is all the last mile needs: the
 * runtime closure is walked only through attested paths (runtimeSuccessors), which are all
 * world paths, and unattested ones need no answer. Work: one question per path and source.
 */
export async function gatherFacts(world: World, sources: readonly FactSource[]): Promise<Map<string, PathAnswers>> {
  const paths = [...world.keys()];
  const bySource = await Promise.all(sources.map((s) => s.facts(paths)));
  const answers = new Map<string, PathAnswers>();
  for (const p of paths) {
    const facts: PathFact[] = [];
    const unusable: { where: string; reason: string }[] = [];
    bySource.forEach((m, i) => {
      const a = m.get(p);
      if (a instanceof Error) unusable.push({ where: (sources[i] as FactSource).name, reason: errorMessage(a) });
      else if (a) facts.push(a);
    });
    answers.set(p, { facts, unusable });
  }
  return answers;
}

/**
 * The NAR sha256 the consumer would get for each of `paths` that a source knows: the local
 * store's first (Nix substitutes nothing over a valid path), else the first cache's.
 */
export async function heldContent(paths: readonly string[], sources: readonly FactSource[]): Promise<Map<string, string>> {
  const ordered = [...sources.filter((s) => s instanceof LocalStoreFacts), ...sources.filter((s) => !(s instanceof LocalStoreFacts))];
  const answers = await gatherFacts(new Map(paths.map((p) => [p, {}])), ordered);
  const out = new Map<string, string>();
  for (const [p, a] of answers) {
    const f = a.facts[0];
    if (f) out.set(p, f.narSha256);
  }
  return out;
}

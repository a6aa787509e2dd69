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
import { runtimeSuccessors, type PathAnswers, type PathFact, type World } from './last-mile.js';

/** One place that may know a store path. */
export interface FactSource {
  readonly name: string;
  /** The source's view of `path`; undefined when it does not know it; throws when it cannot say. */
  fact(path: string): Promise<PathFact | undefined>;
}

/** A narinfo far beyond any real one (a path with 15,000 references) is refused unread. */
export const NARINFO_MAX_BYTES = 1 << 20;

function hex(h: Hash, subject: string): string {
  if (h.algo !== 'sha256') throw new BuildtraceError('NARINFO_INVALID', `${subject}: NAR hash is ${h.algo}, not sha256`, { subject });
  return formatHash(h, 'base16', false);
}

/** What a cache offers the last mile: CacheSource (sources.ts), so narinfo reads share its limiter, bounds and fail-fast. */
export interface ObjectReader {
  readonly name: string;
  readObject(key: string, maxBytes: number): Promise<CacheObject | undefined>;
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

  async fact(path: string): Promise<PathFact | undefined> {
    const key = `${parseStorePath(path, this.storeDir).hashPart}.narinfo`;
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
export interface PathInfoReader {
  pathInfos(paths: readonly string[]): Promise<Map<string, { readonly narHash: Hash; readonly narSize: number; readonly references: readonly string[]; readonly ca?: string }>>;
}

/** The local Nix database: ValidPaths (hash `sha256:<hex>`, narSize, ca) and Refs. */
export class LocalStoreFacts implements FactSource {
  constructor(
    private readonly store: PathInfoReader,
    readonly name: string,
  ) {}

  async fact(path: string): Promise<PathFact | undefined> {
    const i = (await this.store.pathInfos([path])).get(path);
    if (!i) return undefined;
    return { path, narSha256: hex(i.narHash, `${this.name} ${path}`), narSize: i.narSize, references: i.references, ...(i.ca ? { ca: i.ca } : {}), where: this.name };
  }
}

/**
 * Asks every source about every world path and about the target's runtime closure, walked
 * from `roots` along the references the sources list (only through attested paths, see
 * runtimeSuccessors). Work: one question per path and source.
 */
export async function gatherFacts(world: World, roots: readonly string[], sources: readonly FactSource[]): Promise<Map<string, PathAnswers>> {
  const answers = new Map<string, PathAnswers>();
  const asked = new Map<string, Promise<PathAnswers>>();
  const ask = (p: string): Promise<PathAnswers> => {
    let a = asked.get(p);
    if (!a) {
      a = (async () => {
        const facts: PathFact[] = [];
        const unusable: { where: string; reason: string }[] = [];
        await Promise.all(
          sources.map(async (s) => {
            try {
              const f = await s.fact(p);
              if (f) facts.push(f);
            } catch (err) {
              unusable.push({ where: s.name, reason: errorMessage(err) });
            }
          }),
        );
        // source order, whatever order the answers came in
        const order = (w: string): number => sources.findIndex((s) => s.name === w);
        const r = { facts: facts.sort((x, y) => order(x.where) - order(y.where)), unusable: unusable.sort((x, y) => order(x.where) - order(y.where)) };
        answers.set(p, r);
        return r;
      })();
      asked.set(p, a);
    }
    return a;
  };
  const inRuntime = new Set<string>();
  const pending: Promise<unknown>[] = [];
  const reach = (p: string): void => {
    if (inRuntime.has(p)) return;
    inRuntime.add(p);
    // an unattested path is not asked about: its verdict needs no answer
    if (!world.has(p)) return;
    pending.push(ask(p).then((a) => runtimeSuccessors(world, p, a).forEach(reach)));
  };
  for (const p of world.keys()) pending.push(ask(p));
  for (const r of roots) reach(r);
  // the walk adds to `pending` while it runs
  for (let i = 0; i < pending.length; i++) await pending[i];
  return answers;
}

/**
 * The NAR sha256 the consumer would get for each of `paths` that a source knows: the local
 * store's first (Nix substitutes nothing over a valid path), else the first cache's.
 */
export async function heldContent(paths: readonly string[], sources: readonly FactSource[]): Promise<Map<string, string>> {
  const ordered = [...sources.filter((s) => s instanceof LocalStoreFacts), ...sources.filter((s) => !(s instanceof LocalStoreFacts))];
  const answers = await gatherFacts(new Map(paths.map((p) => [p, {}])), [], ordered);
  const out = new Map<string, string>();
  for (const [p, a] of answers) {
    const f = a.facts[0];
    if (f) out.set(p, f.narSha256);
  }
  return out;
}

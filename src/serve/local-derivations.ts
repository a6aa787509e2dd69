/**
 * What the consumer's own Nix database says about derivations: which local `.drv` declares
 * an output at a store path (DerivationOutputs, written when Nix evaluated), and which local
 * `.drv` a realisation id (`sha256:<hash modulo>!<output>`) names. Both are hints: the
 * substituter proves every answer from the `.drv` bytes or the verified world before use.
 */
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { BuildtraceError, errorMessage } from '../errors.js';
import { derivationKind } from '../nix/derivation.js';
import { DrvHashCache } from '../nix/hash-modulo.js';
import type { DrvLoader } from '../store/drv-loader.js';

interface DeclaredOutput {
  readonly drv: string;
  readonly output: string;
}

export class LocalDerivations {
  private readonly db: Database.Database;
  private readonly qOutputs: Database.Statement<[string, string], { drv: string; output: string }>;
  private readonly qDrvs: Database.Statement<[number], { id: number; path: string }>;
  private readonly qValid: Database.Statement<[string], { id: number }>;
  /** realisation hash (hex) -> derivations whose outputs it names (floating or deferred ones) */
  private readonly byHashModulo = new Map<string, string[]>();
  private scannedUpTo = 0;
  private readonly hashes: DrvHashCache;

  constructor(
    readonly dbPath: string,
    private readonly loader: DrvLoader,
    private readonly storeDir = '/nix/store',
  ) {
    try {
      const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
      this.db = new Sqlite(dbPath, { readonly: true, fileMustExist: true });
      this.db.pragma('query_only = 1');
      // DerivationOutputs has an index on path: a range over the hash part is one index seek
      this.qOutputs = this.db.prepare(
        'SELECT v.path AS drv, d.id AS output FROM DerivationOutputs d JOIN ValidPaths v ON v.id = d.drv WHERE d.path >= ? AND d.path < ? ORDER BY v.path, d.id',
      );
      this.qDrvs = this.db.prepare("SELECT id, path FROM ValidPaths WHERE id > ? AND path LIKE '%.drv' ORDER BY id");
      this.qValid = this.db.prepare('SELECT id FROM ValidPaths WHERE path = ?');
      this.qValid.get('');
    } catch (err) {
      throw new BuildtraceError('STORE_QUERY_FAILED', `cannot open the Nix database ${dbPath} read-only: ${errorMessage(err)}`, { subject: dbPath });
    }
    this.hashes = new DrvHashCache(loader.drv, storeDir);
  }

  /** Local derivations that declare an output at a path with this hash part. */
  declaring(hashPart: string): DeclaredOutput[] {
    const lo = `${this.storeDir}/${hashPart}-`;
    return this.qOutputs.all(lo, `${this.storeDir}/${hashPart}.`);
  }

  /** Whether the store holds this path (a `.drv` the consumer evaluated). */
  has(path: string): boolean {
    return this.qValid.get(path) !== undefined;
  }

  /** derivation name (`<name>.drv`) -> local derivations of that name without static output paths */
  private readonly byName = new Map<string, string[]>();

  /**
   * Local derivations without static output paths whose realisation hash is `hashHex`.
   * Derivations registered since the last call are hashed first (once each).
   */
  realisationCandidates(hashHex: string): string[] {
    const known = this.byHashModulo.get(hashHex);
    if (known) return known;
    this.scan();
    return this.byHashModulo.get(hashHex) ?? [];
  }

  /**
   * Local derivations without static output paths named like a resolved derivation
   * (`<hash>-<name>.drv`: resolving keeps the name), the candidates for a build-trace-v2 key.
   */
  unresolvedNamed(drvName: string): string[] {
    this.scan();
    return this.byName.get(drvName) ?? [];
  }

  /** Indexes the floating and deferred derivations registered since the last scan. */
  private scan(): void {
    for (const r of this.qDrvs.all(this.scannedUpTo)) {
      this.scannedUpTo = r.id;
      try {
        const drv = this.loader.drv(r.path);
        const kind = derivationKind(drv, r.path);
        if (kind !== 'floating' && kind !== 'deferred') continue;
        for (const h of new Set(this.hashes.masked(drv).hashes.values())) {
          const list = this.byHashModulo.get(h) ?? [];
          list.push(r.path);
          this.byHashModulo.set(h, list);
        }
        const name = r.path.slice(this.storeDir.length + 34);
        this.byName.set(name, [...(this.byName.get(name) ?? []), r.path]);
      } catch {
        // a .drv that does not load cannot be verified either; the verdict says so when asked
      }
    }
  }

  close(): void {
    this.db.close();
  }
}

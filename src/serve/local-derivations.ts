/**
 * What the consumer's own Nix database says about derivations: which local `.drv` declares
 * an output at a store path (DerivationOutputs, written when Nix evaluated), and which local
 * `.drv` a realisation id (`sha256:<hash modulo>!<output>`) names. Both are hints: the
 * substituter proves every answer from the `.drv` bytes or the verified world before use.
 */
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { BuildtraceError, errorMessage } from '../errors.js';
import type { DrvLoader } from '../store/drv-loader.js';
import { RealisationDerivations } from '../store/realisation-derivations.js';

interface DeclaredOutput {
  readonly drv: string;
  readonly output: string;
}

export class LocalDerivations {
  private readonly db: Database.Database;
  private readonly qOutputs: Database.Statement<[string, string], { drv: string; output: string }>;
  private readonly qValid: Database.Statement<[string], { id: number }>;
  private readonly realisations: RealisationDerivations;

  constructor(
    readonly dbPath: string,
    loader: DrvLoader,
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
      this.qValid = this.db.prepare('SELECT id FROM ValidPaths WHERE path = ?');
      this.qValid.get('');
    } catch (err) {
      throw new BuildtraceError('STORE_QUERY_FAILED', `cannot open the Nix database ${dbPath} read-only: ${errorMessage(err)}`, { subject: dbPath });
    }
    this.realisations = new RealisationDerivations(this.db, loader.drv, storeDir);
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

  /**
   * Local derivations without static output paths whose realisation hash is `hashHex`.
   * Derivations registered since the last call are hashed first (once each).
   */
  realisationCandidates(hashHex: string): string[] {
    return this.realisations.candidates(hashHex);
  }

  /**
   * Local derivations without static output paths named like a resolved derivation
   * (`<hash>-<name>.drv`: resolving keeps the name), the candidates for a build-trace-v2 key.
   */
  unresolvedNamed(drvName: string): string[] {
    return this.realisations.unfixedNamed(drvName.replace(/\.drv$/, ''));
  }

  close(): void {
    this.db.close();
  }
}

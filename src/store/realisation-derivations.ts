/**
 * Which local `.drv` files a realisation names, from Nix's own database. A realisation id is
 * `sha256:<hash modulo>!<output>` (Nix < 2.35); only the hash modulo of the derivation links it
 * to a `.drv`, so the local content-addressed and deferred derivations are hashed (once each).
 * Every answer is a hint: the substituter and the target's door prove it from the `.drv` bytes
 * and the verified world before use.
 *
 * What Nix records in Realisations(drvPath = "sha256:<hex>", outputName, outputPath -> ValidPaths.id)
 * for a content-addressed output (read in NixOS/nix at 2.8.0, 2.26.3, 2.34.4; same schema in all
 * three, with the index IndexRealisationsRefsOnOutputPath):
 * - built from a derivation with inputs: the resolved derivation's build registers its own id
 *   (2.8/2.26 registerOutputs, 2.34 derivation-builder.cc), then DerivationGoal::resolvedFinished
 *   registers the ORIGINAL derivation's id (its hash modulo) for the same path (2.26/2.34: not for impure
 *   derivations). Two rows; ValidPaths.deriver is the resolved .drv.
 * - substituted through a realisation (DrvOutputSubstitutionGoal): only the original's id.
 * drvPath is "sha256:" + base16 (DrvOutput::strHash) in all three.
 * A query by output path thus sees the original's id in every case; the resolved one's row
 * yields a resolved .drv, which the door skips.
 */
import type Database from 'better-sqlite3';
import { derivationKind, type Derivation } from '../nix/derivation.js';
import { DrvHashCache } from '../nix/hash-modulo.js';

/** A Realisations row for an output path: the realised derivation's hash modulo (hex) and output. */
interface RealisationRow {
  readonly hashModulo: string;
  readonly output: string;
}

export class RealisationDerivations {
  private readonly qDrvs: Database.Statement<[number], { id: number; path: string }>;
  private qRows: Database.Statement<[string], { drvPath: string; outputName: string }> | undefined;
  /** realisation hash (hex) -> derivations whose outputs it names (floating or deferred ones) */
  private readonly byHashModulo = new Map<string, string[]>();
  /** every local .drv seen so far, by derivation name (the part after the hash) */
  private readonly byName = new Map<string, string[]>();
  private readonly hashed = new Set<string>();
  /** the floating and deferred derivations among those hashed */
  private readonly unfixed = new Set<string>();
  private scannedUpTo = 0;
  private readonly hashes: DrvHashCache;

  constructor(
    private readonly db: Database.Database,
    private readonly load: (drvPath: string) => Derivation,
    private readonly storeDir = '/nix/store',
  ) {
    this.qDrvs = db.prepare("SELECT id, path FROM ValidPaths WHERE id > ? AND path LIKE '%.drv' ORDER BY id");
    this.hashes = new DrvHashCache(load, storeDir);
  }

  /** Nix's realisations whose output is `path` (none when the database has no Realisations table: ca-derivations never enabled). */
  rowsFor(path: string): RealisationRow[] {
    try {
      this.qRows ??= this.db.prepare(
        'SELECT r.drvPath AS drvPath, r.outputName AS outputName FROM Realisations r JOIN ValidPaths v ON v.id = r.outputPath WHERE v.path = ? ORDER BY r.id',
      );
    } catch {
      return [];
    }
    return this.qRows
      .all(path)
      .filter((r) => /^sha256:[0-9a-f]{64}$/.test(r.drvPath))
      .map((r) => ({ hashModulo: r.drvPath.slice('sha256:'.length), output: r.outputName }));
  }

  /**
   * Local derivations without static output paths whose realisation hash is `hashHex`; with
   * `drvName`, only derivations of that name are hashed (an output's path name gives it).
   * Derivations registered since the last call are looked at first.
   */
  candidates(hashHex: string, drvName?: string): string[] {
    if (drvName === undefined) {
      const known = this.byHashModulo.get(hashHex);
      if (known) return known;
    }
    this.scan();
    const todo = drvName === undefined ? [...this.byName.values()].flat() : (this.byName.get(drvName) ?? []);
    for (const p of todo) this.hash(p);
    const all = this.byHashModulo.get(hashHex) ?? [];
    return drvName === undefined ? all : all.filter((p) => this.nameOf(p) === drvName);
  }

  /** Local floating and deferred derivations named `drvName` (without `.drv`). */
  unfixedNamed(drvName: string): string[] {
    this.scan();
    const named = this.byName.get(drvName) ?? [];
    for (const p of named) this.hash(p);
    return named.filter((p) => this.unfixed.has(p));
  }

  private nameOf(drvPath: string): string {
    // <storeDir>/<32-char hash>-<name>.drv
    return drvPath.slice(this.storeDir.length + 34, -'.drv'.length);
  }

  private scan(): void {
    for (const r of this.qDrvs.all(this.scannedUpTo)) {
      this.scannedUpTo = r.id;
      const n = this.nameOf(r.path);
      const list = this.byName.get(n);
      if (list) list.push(r.path);
      else this.byName.set(n, [r.path]);
    }
  }

  private hash(drvPath: string): void {
    if (this.hashed.has(drvPath)) return;
    this.hashed.add(drvPath);
    try {
      const drv = this.load(drvPath);
      const kind = derivationKind(drv, drvPath);
      if (kind !== 'floating' && kind !== 'deferred') return;
      this.unfixed.add(drvPath);
      for (const h of new Set(this.hashes.masked(drv).hashes.values())) {
        const list = this.byHashModulo.get(h) ?? [];
        list.push(drvPath);
        this.byHashModulo.set(h, list);
      }
    } catch {
      // a .drv that does not load cannot be verified either; the verdict says so when asked
    }
  }
}

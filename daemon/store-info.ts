import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { BuildtraceError } from '../src/errors.js';
import { parseHash, type Hash } from '../src/nix/hash.js';

const execFileP = promisify(execFile);

export interface PathInfo {
  readonly path: string;
  readonly narHash: Hash;
  readonly narSize: number;
  readonly references: readonly string[];
  readonly deriver?: string;
  readonly ca?: string;
}

/**
 * What the daemon needs from the Nix store besides .drv files: path metadata
 * (NAR hash and size) and floating-CA realisations. Both answer in batches.
 */
export interface StoreInfo {
  readonly mode: 'db' | 'cli';
  /** Path infos for the valid paths among `paths` (invalid ones are absent). */
  pathInfos(paths: readonly string[]): Promise<Map<string, PathInfo>>;
  /** Output path of a realisation `sha256:<hashModulo>!<output>`, when known. */
  realisation(hashModuloHex: string, output: string): string | undefined;
  /** cli mode only: the output paths Nix recorded for a built CA derivation. */
  drvOutputs?(drvPath: string): Promise<string[]>;
  close(): void;
}

/**
 * Reads Nix's own SQLite database read-only (nix-daemon runs it in WAL mode, so
 * readers never block it). About a hundred times faster than spawning
 * `nix path-info` and the only way Nix 2.8 exposes realisations by hash modulo.
 */
export class NixDbStoreInfo implements StoreInfo {
  readonly mode = 'db' as const;
  private readonly db: Database.Database;
  private readonly qPath: Database.Statement<[string], { id: number; hash: string; narSize: number | null; deriver: string | null; ca: string | null }>;
  private readonly qRefs: Database.Statement<[number], { path: string }>;
  private readonly qReal: Database.Statement<[string, string], { path: string }>;

  constructor(dbPath: string) {
    try {
      this.db = new Database(dbPath, { readonly: true, fileMustExist: true });
      this.db.pragma('query_only = 1');
      this.qPath = this.db.prepare('SELECT id, hash, narSize, deriver, ca FROM ValidPaths WHERE path = ?');
      this.qRefs = this.db.prepare('SELECT v.path AS path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer = ?');
      this.qReal = this.db.prepare(
        'SELECT v.path AS path FROM Realisations r JOIN ValidPaths v ON v.id = r.outputPath WHERE r.drvPath = ? AND r.outputName = ? ORDER BY r.id DESC LIMIT 1',
      );
      // Probe now: a WAL database on a read-only mount can open and still fail on the first
      // read; "auto" must then fall back to the CLI instead of retrying forever.
      this.db.prepare('SELECT id FROM ValidPaths LIMIT 1').get();
    } catch (err) {
      throw new BuildtraceError('STORE_QUERY_FAILED', `cannot open the Nix database ${dbPath} read-only: ${(err as Error).message}`, { subject: dbPath, cause: err });
    }
  }

  async pathInfos(paths: readonly string[]): Promise<Map<string, PathInfo>> {
    const out = new Map<string, PathInfo>();
    for (const p of new Set(paths)) {
      const row = this.qPath.get(p);
      if (!row) continue;
      const narHash = parseHash(row.hash);
      if (row.narSize === null) throw new BuildtraceError('STORE_QUERY_FAILED', `${p}: the Nix database has no NAR size`, { subject: p });
      out.set(p, {
        path: p,
        narHash,
        narSize: row.narSize,
        references: this.qRefs.all(row.id).map((r) => r.path).sort(),
        ...(row.deriver ? { deriver: row.deriver } : {}),
        ...(row.ca ? { ca: row.ca } : {}),
      });
    }
    return out;
  }

  realisation(hashModuloHex: string, output: string): string | undefined {
    return this.qReal.get(`sha256:${hashModuloHex}`, output)?.path;
  }

  close(): void {
    this.db.close();
  }
}

/** `nix path-info --json`, in batches, for stores the daemon cannot read directly. */
export class NixCliStoreInfo implements StoreInfo {
  readonly mode = 'cli' as const;
  constructor(
    private readonly nix = 'nix',
    private readonly batch = 2000,
  ) {}

  async pathInfos(paths: readonly string[]): Promise<Map<string, PathInfo>> {
    const out = new Map<string, PathInfo>();
    const all = [...new Set(paths)];
    for (let i = 0; i < all.length; i += this.batch) {
      const chunk = all.slice(i, i + this.batch);
      let stdout: string;
      try {
        ({ stdout } = await execFileP(
          this.nix,
          ['--extra-experimental-features', 'nix-command', '--option', 'substituters', '', 'path-info', '--json', ...chunk],
          { maxBuffer: 256 * 1024 * 1024 },
        ));
      } catch (err) {
        // Nix 2.8 reports missing paths as {"valid":false}; a failure here is the store's, not the path's.
        throw new BuildtraceError('STORE_QUERY_FAILED', `nix path-info failed: ${(err as Error).message.split('\n')[0]}`, { cause: err });
      }
      for (const e of JSON.parse(stdout) as { path: string; valid?: boolean; narHash?: string; narSize?: number; references?: string[]; deriver?: string; ca?: string }[]) {
        if (e.valid === false || e.narHash === undefined || e.narSize === undefined) continue;
        out.set(e.path, {
          path: e.path,
          narHash: parseHash(e.narHash),
          narSize: e.narSize,
          references: [...(e.references ?? [])].sort(),
          ...(e.deriver ? { deriver: e.deriver } : {}),
          ...(e.ca ? { ca: e.ca } : {}),
        });
      }
    }
    return out;
  }

  realisation(): string | undefined {
    return undefined;
  }

  /** Output paths of a built floating-CA derivation: `nix realisation info --json <drv>`. */
  async drvOutputs(drvPath: string): Promise<string[]> {
    try {
      const { stdout } = await execFileP(this.nix, ['--extra-experimental-features', 'nix-command ca-derivations', '--option', 'substituters', '', 'realisation', 'info', '--json', drvPath], {
        maxBuffer: 16 << 20,
      });
      return (JSON.parse(stdout) as { outPath?: string }[]).flatMap((r) => (r.outPath ? [`${drvPath.slice(0, drvPath.lastIndexOf('/'))}/${r.outPath}`] : []));
    } catch {
      return [];
    }
  }

  close(): void {}
}

export function openStoreInfo(mode: 'auto' | 'db' | 'cli', nixDb: string): StoreInfo {
  if (mode === 'cli') return new NixCliStoreInfo();
  try {
    return new NixDbStoreInfo(nixDb);
  } catch (err) {
    if (mode === 'db') throw err;
    return new NixCliStoreInfo();
  }
}

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { BuildtraceError, errorMessage } from '../src/errors.js';
import { parseHash, type Hash } from '../src/nix/hash.js';
import {
  parseNixVersion,
  parsePathInfoJson,
  parseRealisationsJson,
  pathInfoJsonArgs,
  realisationInstallable,
  type NixVersion,
} from '../src/nix/nix-cli-json.js';

const execFileP = promisify(execFile);

/** Paths per database statement (a JSON array of this many store paths is about 100 KB). */
const DB_BATCH = 2000;

/** A floating-CA derivation and the hash modulo (hex) of each of its outputs. */
export interface FloatingDrv {
  readonly drvPath: string;
  readonly outputs: ReadonlyArray<readonly [name: string, hashModuloHex: string]>;
}

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
  /**
   * Makes `realisation` answer for these floating-CA derivations where Nix knows their
   * outputs (the CLI asks Nix; the database needs nothing). An unbuilt one is left unknown.
   */
  loadRealisations(drvs: readonly FloatingDrv[]): Promise<void>;
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
  private readonly qPaths: Database.Statement<
    [string],
    { path: string; id: number; hash: string; narSize: number | null; deriver: string | null; ca: string | null }
  >;
  private readonly qRefs: Database.Statement<[string], { referrer: number; path: string }>;
  private readonly qReal: Database.Statement<[string, string], { path: string }>;

  constructor(dbPath: string) {
    try {
      this.db = new Database(dbPath, { readonly: true, fileMustExist: true });
      this.db.pragma('query_only = 1');
      // A batch of paths (or ids) per statement, as a JSON array: a verifier asks about a whole
      // closure, and one statement per path costs twice as much as the lookups themselves.
      this.qPaths = this.db.prepare('SELECT path, id, hash, narSize, deriver, ca FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?))');
      this.qRefs = this.db.prepare(
        'SELECT r.referrer AS referrer, v.path AS path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer IN (SELECT value FROM json_each(?))',
      );
      this.qReal = this.db.prepare(
        'SELECT v.path AS path FROM Realisations r JOIN ValidPaths v ON v.id = r.outputPath WHERE r.drvPath = ? AND r.outputName = ? ORDER BY r.id DESC LIMIT 1',
      );
      // Probe now: a WAL database on a read-only mount can open and still fail on the first
      // read; "auto" must then fall back to the CLI instead of retrying forever.
      this.db.prepare('SELECT id FROM ValidPaths LIMIT 1').get();
    } catch (err) {
      throw new BuildtraceError('STORE_QUERY_FAILED', `cannot open the Nix database ${dbPath} read-only: ${(err as Error).message}`, {
        subject: dbPath,
        cause: err,
      });
    }
  }

  async pathInfos(paths: readonly string[]): Promise<Map<string, PathInfo>> {
    const out = new Map<string, PathInfo>();
    const all = [...new Set(paths)];
    for (let i = 0; i < all.length; i += DB_BATCH) {
      const rows = this.qPaths.all(JSON.stringify(all.slice(i, i + DB_BATCH)));
      const refs = new Map<number, string[]>(rows.map((r) => [r.id, []]));
      for (const r of this.qRefs.all(JSON.stringify(rows.map((x) => x.id)))) refs.get(r.referrer)?.push(r.path);
      for (const row of rows) {
        const p = row.path;
        const narHash = parseHash(row.hash);
        if (row.narSize === null) throw new BuildtraceError('STORE_QUERY_FAILED', `${p}: the Nix database has no NAR size`, { subject: p });
        out.set(p, {
          path: p,
          narHash,
          narSize: row.narSize,
          references: (refs.get(row.id) ?? []).sort(),
          ...(row.deriver ? { deriver: row.deriver } : {}),
          ...(row.ca ? { ca: row.ca } : {}),
        });
      }
    }
    return out;
  }

  realisation(hashModuloHex: string, output: string): string | undefined {
    return this.qReal.get(`sha256:${hashModuloHex}`, output)?.path;
  }

  async loadRealisations(): Promise<void> {}

  close(): void {
    this.db.close();
  }
}

/** `nix --version`, asked once per Nix binary. */
const versions = new Map<string, Promise<NixVersion>>();
export function nixVersion(nix = 'nix'): Promise<NixVersion> {
  let v = versions.get(nix);
  if (v === undefined) {
    v = execFileP(nix, ['--version'], { timeout: 30_000 }).then(
      ({ stdout }) => parseNixVersion(stdout),
      (err: unknown) => {
        versions.delete(nix); // a transient failure is asked again next time
        throw new BuildtraceError('STORE_QUERY_FAILED', `cannot run ${nix} --version: ${errorMessage(err).split('\n')[0]}`, { cause: err });
      },
    );
    versions.set(nix, v);
  }
  return v;
}

const NIX_ARGS = ['--extra-experimental-features', 'nix-command ca-derivations', '--option', 'substituters', ''];

/** Nix says this about a derivation that has no realisation yet: not an error of the store. */
const UNBUILT = /cannot operate on (?:an )?output .*unbuilt/;

/**
 * `nix path-info --json` in batches, and `nix realisation info --json` per derivation, for
 * stores the daemon cannot read directly. Handles every JSON shape from Nix 2.8 on (see
 * src/nix/nix-cli-json.ts) and asks for a versioned format where Nix has one.
 */
export class NixCliStoreInfo implements StoreInfo {
  readonly mode = 'cli' as const;
  private jsonArgs: string[] | undefined;
  /** `<hashModuloHex>!<output>` -> output path, filled by loadRealisations. */
  private readonly realisations = new Map<string, string>();
  constructor(
    private readonly nix = 'nix',
    private readonly batch = 2000,
    private readonly storeDir = '/nix/store',
  ) {}

  private async exec(args: readonly string[]): Promise<string> {
    const { stdout } = await execFileP(this.nix, [...NIX_ARGS, ...args], { maxBuffer: 256 * 1024 * 1024 });
    return stdout;
  }

  private async pathInfoJson(chunk: readonly string[]): Promise<string> {
    this.jsonArgs ??= pathInfoJsonArgs(await nixVersion(this.nix));
    try {
      return await this.exec(['path-info', ...this.jsonArgs, ...chunk]);
    } catch (err) {
      if (this.jsonArgs.length > 1 && /unrecognised flag '--json-format'/.test(errorMessage(err))) {
        this.jsonArgs = ['--json'];
        return this.pathInfoJson(chunk);
      }
      // A missing path is reported in the JSON, not by the exit code: a failure is the store's.
      throw new BuildtraceError('STORE_QUERY_FAILED', `nix path-info failed: ${errorMessage(err).split('\n').slice(0, 3).join(' ')}`, { cause: err });
    }
  }

  async pathInfos(paths: readonly string[]): Promise<Map<string, PathInfo>> {
    const out = new Map<string, PathInfo>();
    const all = [...new Set(paths)];
    for (let i = 0; i < all.length; i += this.batch) {
      const chunk = all.slice(i, i + this.batch);
      for (const [path, e] of parsePathInfoJson(await this.pathInfoJson(chunk))) {
        out.set(path, {
          path,
          narHash: parseHash(e.narHash),
          narSize: e.narSize,
          references: [...e.references].sort(),
          ...(e.deriver !== undefined ? { deriver: e.deriver } : {}),
          ...(e.ca !== undefined ? { ca: e.ca } : {}),
        });
      }
    }
    return out;
  }

  realisation(hashModuloHex: string, output: string): string | undefined {
    return this.realisations.get(`${hashModuloHex}!${output}`);
  }

  /** Asks Nix for the realisations of each floating-CA derivation whose outputs are not known yet. */
  async loadRealisations(drvs: readonly FloatingDrv[]): Promise<void> {
    const v = await nixVersion(this.nix);
    for (const d of drvs) {
      if (d.outputs.every(([name, hex]) => this.realisations.has(`${hex}!${name}`))) continue;
      let stdout: string;
      try {
        // one derivation per call: Nix fails the whole call when any of them is unbuilt
        stdout = await this.exec(['realisation', 'info', '--json', realisationInstallable(v, d.drvPath)]);
      } catch (err) {
        if (UNBUILT.test(errorMessage(err))) continue; // no realisation yet: resolution says so
        throw new BuildtraceError('STORE_QUERY_FAILED', `nix realisation info ${d.drvPath} failed: ${errorMessage(err).split('\n').slice(0, 3).join(' ')}`, {
          subject: d.drvPath,
          cause: err,
        });
      }
      if (this.realisations.size > 100_000) this.realisations.clear();
      for (const r of parseRealisationsJson(stdout, this.storeDir)) this.realisations.set(`${r.drvHashHex}!${r.output}`, r.outPath);
    }
  }

  close(): void {}
}

/**
 * `storeInfo: "auto"`: Nix's database when it can be read, else the CLI. On a fresh store the
 * database appears only with the first build (Nix >= 2.26), after the daemon started: it is
 * looked for again, at most every few seconds, until it opens.
 */
export class AutoStoreInfo implements StoreInfo {
  private db: NixDbStoreInfo | undefined;
  private readonly cli: NixCliStoreInfo;
  private lastTry = 0;
  constructor(
    private readonly nixDb: string,
    cli = new NixCliStoreInfo(),
    private readonly retryMs = 2_000,
  ) {
    this.cli = cli;
    this.current();
  }

  private current(): StoreInfo {
    if (this.db === undefined && Date.now() - this.lastTry >= this.retryMs) {
      this.lastTry = Date.now();
      try {
        this.db = new NixDbStoreInfo(this.nixDb);
      } catch (err) {
        // Only "cannot open" is expected here; anything else is a bug to surface.
        if (!(err instanceof BuildtraceError && err.code === 'STORE_QUERY_FAILED')) throw err;
      }
    }
    return this.db ?? this.cli;
  }

  get mode(): 'db' | 'cli' {
    return this.current().mode;
  }

  pathInfos(paths: readonly string[]): Promise<Map<string, PathInfo>> {
    return this.current().pathInfos(paths);
  }

  realisation(hashModuloHex: string, output: string): string | undefined {
    return this.current().realisation(hashModuloHex, output);
  }

  loadRealisations(drvs: readonly FloatingDrv[]): Promise<void> {
    return this.current().loadRealisations(drvs);
  }

  close(): void {
    this.db?.close();
    this.cli.close();
  }
}

export function openStoreInfo(mode: 'auto' | 'db' | 'cli', nixDb: string): StoreInfo {
  if (mode === 'cli') return new NixCliStoreInfo();
  if (mode === 'db') return new NixDbStoreInfo(nixDb);
  return new AutoStoreInfo(nixDb);
}

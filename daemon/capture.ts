import { BuildtraceError } from '../src/errors.js';
import { derivationKind, derivationName, type Derivation } from '../src/nix/derivation.js';
import { DrvHashCache } from '../src/nix/hash-modulo.js';
import { resolveDerivation } from '../src/nix/resolve.js';
import { outputPathName, parseStorePath, printStorePath } from '../src/nix/store-path.js';
import type { TraceKind } from '../src/trace/statement.js';
import type { DrvLoader } from '../src/store/drv-loader.js';
import type { FloatingDrv, PathInfo, StoreInfo } from './store-info.js';

/** One hook invocation, as the spool record states it. */
export interface BuildRecord {
  readonly drv: string;
  readonly outs: readonly string[];
}

/** Everything a trace needs, before path metadata is attached. */
export interface Resolved {
  readonly record: BuildRecord;
  readonly kind: TraceKind;
  readonly drvName: string;
  readonly rdrvPath: string;
  readonly rdrvHash: string;
  /** Output name -> path, plus the output's declaration (without path). */
  readonly outputs: ReadonlyArray<{ readonly name: string; readonly path: string; readonly declared: { hashAlgo?: string; hash?: string } }>;
  readonly inputs: readonly string[];
}

export interface Captured extends Resolved {
  readonly outputInfo: ReadonlyMap<string, PathInfo>;
  readonly inputInfo: ReadonlyMap<string, PathInfo>;
}

/**
 * Turns a hook record into the resolved derivation and its concrete outputs.
 * Pure apart from reading .drv files and asking the store about realisations.
 */
export class Capturer {
  readonly hashes: DrvHashCache;
  constructor(
    private readonly loader: DrvLoader,
    private readonly store: StoreInfo,
    private readonly storeDir = '/nix/store',
  ) {
    this.hashes = new DrvHashCache(loader.drv, storeDir);
  }

  /** The concrete path of `output` of the (input) derivation at `drvPath`. */
  private outputPath = (drvPath: string, output: string): string | undefined => {
    const drv = this.loader.drv(drvPath);
    const o = drv.outputs.get(output);
    if (o === undefined) return undefined;
    if (o.path !== '') return o.path;
    const h = this.hashes.masked(drv).hashes.get(output);
    return h === undefined ? undefined : this.store.realisation(h, output);
  };

  /** The floating-CA outputs of the derivation at `drvPath`, with their hash modulo. */
  private floating(drvPath: string): FloatingDrv | undefined {
    const drv = this.loader.drv(drvPath);
    const open = [...drv.outputs].filter(([, o]) => o.path === '').map(([n]) => n);
    if (open.length === 0) return undefined;
    const h = this.hashes.masked(drv).hashes;
    return {
      drvPath,
      outputs: open.flatMap((n) => {
        const x = h.get(n);
        return x === undefined ? [] : [[n, x] as const];
      }),
    };
  }

  /**
   * Fetches what `resolve` will ask the store about: the realisations of the floating-CA
   * input derivations, and of the record's own outputs when the hook gave none (Nix 2.8
   * reports a resolved CA build with empty OUT_PATHS). Needed only without Nix's database.
   */
  prepare(record: BuildRecord): Promise<void> {
    return this.loadRealisationsFor(record.drv, record.outs.length === 0);
  }

  private async loadRealisationsFor(drvPath: string, ownOutputs: boolean): Promise<void> {
    if (this.store.mode !== 'cli') return;
    const drv = this.loader.drv(drvPath);
    const want: FloatingDrv[] = [];
    for (const input of drv.inputDrvs.keys()) {
      const f = this.floating(input);
      if (f) want.push(f);
    }
    if (ownOutputs) {
      const f = this.floating(drvPath);
      if (f) want.push(f);
    }
    await this.store.loadRealisations(want);
  }

  /**
   * The resolved derivation a `.drv` stands for, without its outputs: what `show` looks a
   * trace up by when the hook never named this `.drv` (Nix >= 2.34 reports only the
   * resolved one). RESOLUTION_FAILED when an input has no known realisation.
   */
  async resolvedPath(drvPath: string): Promise<{ rdrvPath: string; rdrvHash: string }> {
    await this.loadRealisationsFor(drvPath, false);
    const drv = this.loader.drv(drvPath);
    const rdrvPath = drv.inputDrvs.size === 0 ? drvPath : printStorePath(resolveDerivation(drv, this.outputPath, this.storeDir).path);
    return { rdrvPath, rdrvHash: parseStorePath(rdrvPath, this.storeDir).hashPart };
  }

  resolve(record: BuildRecord): Resolved {
    const loaded = this.loader.load(record.drv);
    const drv = loaded.drv;
    const drvName = derivationName(drv, record.drv);
    const kind0 = derivationKind(drv, record.drv);
    if (kind0 === 'impure') {
      throw new BuildtraceError('DERIVATION_INVALID', `${record.drv}: impure derivations are not traced`, { subject: record.drv });
    }
    let rdrv: Derivation;
    let rdrvPath: string;
    if (drv.inputDrvs.size === 0) {
      rdrv = drv;
      rdrvPath = record.drv;
    } else {
      const r = resolveDerivation(drv, this.outputPath, this.storeDir);
      rdrv = r.drv;
      rdrvPath = printStorePath(r.path);
    }
    const kind1 = derivationKind(rdrv, rdrvPath);
    const kind: TraceKind = kind1 === 'floating' ? 'ca' : kind1 === 'fixed' ? 'fixed' : 'ia';
    const byName = new Map<string, string>();
    for (const p of record.outs) byName.set(parseStorePath(p, this.storeDir).name, p);
    let floatingHash: string | undefined;
    const outputs = [...rdrv.outputs].map(([name, o]) => {
      let path = o.path;
      if (path === '') {
        floatingHash ??= this.hashes.masked(rdrv).hashes.get(name);
        path = (floatingHash !== undefined ? this.store.realisation(floatingHash, name) : undefined) ?? byName.get(outputPathName(drvName, name)) ?? '';
        if (path === '') {
          throw new BuildtraceError('RESOLUTION_FAILED', `${record.drv}: output ${name} has no known path (no realisation and not in OUT_PATHS)`, {
            subject: record.drv,
          });
        }
      }
      const declared: { hashAlgo?: string; hash?: string } =
        o.hashAlgo === '' ? {} : o.hash === '' ? { hashAlgo: o.hashAlgo } : { hashAlgo: o.hashAlgo, hash: o.hash };
      return { name, path, declared };
    });
    return {
      record,
      kind,
      drvName,
      rdrvPath,
      rdrvHash: parseStorePath(rdrvPath, this.storeDir).hashPart,
      outputs,
      inputs: [...rdrv.inputSrcs],
    };
  }

  /** Resolves a batch and attaches path metadata with one store query. */
  async capture(resolved: readonly Resolved[]): Promise<Map<Resolved, Captured | BuildtraceError>> {
    const want: string[] = [];
    for (const r of resolved) {
      for (const o of r.outputs) want.push(o.path);
      for (const i of r.inputs) want.push(i);
    }
    const infos = await this.store.pathInfos(want);
    const out = new Map<Resolved, Captured | BuildtraceError>();
    for (const r of resolved) {
      const missing = [...r.outputs.map((o) => o.path), ...r.inputs].find((p) => !infos.has(p));
      if (missing !== undefined) {
        out.set(r, new BuildtraceError('STORE_QUERY_FAILED', `${r.record.drv}: ${missing} is not a valid store path`, { subject: missing }));
        continue;
      }
      const pick = (ps: readonly string[]): Map<string, PathInfo> => new Map(ps.map((p) => [p, infos.get(p) as PathInfo]));
      out.set(r, { ...r, outputInfo: pick(r.outputs.map((o) => o.path)), inputInfo: pick(r.inputs) });
    }
    return out;
  }
}

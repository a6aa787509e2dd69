import { BuildtraceError } from '../errors.js';
import { parseDerivation } from '../nix/aterm.js';
import type { Derivation } from '../nix/derivation.js';
import { derivationStorePath } from '../nix/resolve.js';
import { parseStorePath, printStorePath } from '../nix/store-path.js';
import { readRegularFile } from '../util/read-input.js';

// The largest .drv files in nixpkgs are around a megabyte.
const MAX_DRV_BYTES = 16 * 1024 * 1024;

interface LoadedDrv {
  readonly path: string;
  readonly drv: Derivation;
}

/**
 * Reads .drv files from the store, refusing symlinks and anything whose bytes do
 * not hash to its own store path (a truncated or tampered file). Keeps a bounded
 * cache: builds reuse the same inputs over and over.
 */
export class DrvLoader {
  private readonly cache = new Map<string, LoadedDrv>();
  constructor(
    private readonly storeDir = '/nix/store',
    /** The daemon keeps a few thousand; the verifier holds a whole closure. */
    private readonly maxEntries = 2000,
    /** Where the store lies on disk when not at `storeDir` (a chroot store, `--store /root`): its root. */
    private readonly realRoot = '',
  ) {}

  load = (path: string): LoadedDrv => {
    const hit = this.cache.get(path);
    if (hit) {
      // refresh the LRU position (a verifier that keeps everything asks millions of times: no need)
      if (this.maxEntries !== Number.POSITIVE_INFINITY) {
        this.cache.delete(path);
        this.cache.set(path, hit);
      }
      return hit;
    }
    const sp = parseStorePath(path, this.storeDir);
    if (!sp.name.endsWith('.drv')) throw new BuildtraceError('DERIVATION_INVALID', `${path} is not a .drv file`, { subject: path });
    // never through a symlink, never blocking on a FIFO, never reading a device
    const buf = readRegularFile(`${this.realRoot}${path}`, 'derivation', { maxBytes: MAX_DRV_BYTES, noFollow: true, invalidCode: 'DERIVATION_INVALID' });
    const text = buf.toString('latin1');
    const drv = parseDerivation(text, path);
    const computed = printStorePath(derivationStorePath(drv, buf, this.storeDir));
    if (computed !== path) {
      throw new BuildtraceError('DERIVATION_INVALID', `${path}: contents hash to ${computed}; the file is corrupt or not a derivation Nix wrote`, {
        subject: path,
      });
    }
    const loaded = { path, drv };
    this.cache.set(path, loaded);
    if (this.cache.size > this.maxEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    return loaded;
  };

  drv = (path: string): Derivation => this.load(path).drv;
}

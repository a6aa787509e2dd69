import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  createReadStream,
  existsSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { CacheError, type CacheBackend, type CacheObject, type GetOptions } from './backend.js';
import { limitExceeded } from './limits.js';

function etagOf(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** no empty, `.` or `..` component, no leading or trailing slash */
const ILLEGAL_KEY = /(^|\/)\.{0,2}(\/|$)/;

function safeKey(key: string): string {
  if (ILLEGAL_KEY.test(key)) throw new CacheError(`illegal cache key ${JSON.stringify(key)}`, true);
  return key;
}

/**
 * Makes sure every directory of `key` under `root` is a real directory, not a symbolic link
 * (creating missing ones when `create`), so a writer (often root) never writes through a link
 * planted in a shared cache directory. Files themselves are replaced by rename, which never
 * follows a link, and lock files are created with O_EXCL, which refuses one.
 */
function realDirs(root: string, key: string, create: boolean): string {
  let dir = root;
  for (const p of key.split('/').slice(0, -1)) {
    dir = join(dir, p);
    if (create) {
      try {
        mkdirSync(dir, 0o755);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    if (!lstatSync(dir).isDirectory()) throw Object.assign(new Error(`${dir} is a symbolic link or not a directory`), { code: 'ELOOP' });
  }
  return dir;
}

/** With /proc, every component is opened relative to its parent's descriptor (openat): no race. */
const PROC_FD = existsSync('/proc/self/fd');

/**
 * Directory descriptors under a cache root, each opened component by component with
 * O_NOFOLLOW (via /proc/self/fd, i.e. openat): a symbolic link anywhere below the root is
 * refused, and no path is resolved twice. Held open because a verifier reads thousands of
 * objects from one or two directories; a directory that was removed since (no links left) is
 * opened afresh, and at most 64 are kept.
 */
class DirHandles {
  private readonly open = new Map<string, number>();
  private checkedAt = Date.now();
  constructor(private readonly root: string) {}

  /** The descriptor of directory `rel` ('' for the root itself). */
  fd(rel: string): number {
    // at most once a second: is any held directory gone (removed, no links left)?
    if (Date.now() - this.checkedAt > 1000) {
      this.checkedAt = Date.now();
      for (const [k, fd] of this.open) {
        if (fstatSync(fd).nlink > 0) continue;
        this.open.delete(k);
        closeSync(fd);
      }
    }
    const have = this.open.get(rel);
    if (have !== undefined) return have;
    if (this.open.size >= 64) this.close();
    const cut = rel.lastIndexOf('/');
    // the root is the operator's choice and may itself be a link
    const fd =
      rel === ''
        ? openSync(this.root, constants.O_RDONLY | constants.O_DIRECTORY)
        : openSync(
            `/proc/self/fd/${this.fd(cut < 0 ? '' : rel.slice(0, cut))}/${rel.slice(cut + 1)}`,
            constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW,
          );
    this.open.set(rel, fd);
    return fd;
  }

  close(): void {
    for (const fd of this.open.values()) closeSync(fd);
    this.open.clear();
  }
}

/** Where `key` is opened: through the held descriptor of its directory (no link below `root` is followed). */
function pathUnder(root: string, dirs: DirHandles, key: string): string {
  const cut = key.lastIndexOf('/');
  if (!PROC_FD) return join(realDirs(root, key, false), key.slice(cut + 1));
  return `/proc/self/fd/${dirs.fd(cut < 0 ? '' : key.slice(0, cut))}/${key.slice(cut + 1)}`;
}

/**
 * Opens `root/key` for reading without following any symbolic link below `root` and without
 * blocking (a FIFO opens at once with O_NONBLOCK); the caller checks the file type.
 */
function openUnder(root: string, dirs: DirHandles, key: string): number {
  return openSync(pathUnder(root, dirs, key), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
}

/** Reads an open regular file, at most `max` bytes (the file may grow while we read). */
function readCapped(fd: number, size: number, max: number, tooBig: () => Error): Buffer {
  let buf = Buffer.allocUnsafe(Math.max(1, Math.min(size, max) + 1));
  let n = 0;
  for (;;) {
    if (n === buf.length) {
      if (n > max) throw tooBig();
      const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, max + 1));
      buf.copy(bigger, 0, 0, n);
      buf = bigger;
    }
    const got = readSync(fd, buf, n, buf.length - n, null);
    if (got === 0) break;
    n += got;
  }
  if (n > max) throw tooBig();
  return buf.subarray(0, n);
}

/**
 * file:// cache: temp file + rename for every write; conditional writes take a
 * per-object lock file (O_EXCL) so concurrent publishers on one host or NFS serialise.
 */
export class FileCache implements CacheBackend {
  readonly url: string;
  private readonly dirs: DirHandles;
  constructor(readonly root: string) {
    this.url = `file://${root}`;
    this.dirs = new DirHandles(root);
  }

  /**
   * An lstat per key that does not throw (a thrown ENOENT costs ~17 µs, the lstat ~3 µs) and
   * follows no link: only "no such entry" counts as absent. Anything found, and any key this
   * cannot look at, is left to `get`, which opens and checks it as always.
   */
  absent(keys: readonly string[]): ReadonlySet<string> {
    const out = new Set<string>();
    for (const key of keys) {
      try {
        if (lstatSync(pathUnder(this.root, this.dirs, safeKey(key)), { throwIfNoEntry: false }) === undefined) out.add(key);
      } catch {
        // a link or non-directory on the way, an illegal key: get reports it
      }
    }
    return out;
  }

  /**
   * Only regular files, never through a symbolic link below the root (a hostile cache's
   * `traces/<h>` -> /dev/zero, a FIFO, a device), and never more than `maxBytes`.
   */
  async get(key: string, opts: GetOptions = {}): Promise<CacheObject | undefined> {
    const max = opts.maxBytes ?? Number.POSITIVE_INFINITY;
    const opened = this.openRegular(key);
    if (!opened) return undefined;
    const { fd, st } = opened;
    try {
      const tooBig = (): Error => limitExceeded('maxObjectBytes', max, key, this.url, `the file has ${st.size} bytes or more`);
      if (st.size > max) throw tooBig();
      const body = readCapped(fd, st.size, max === Number.POSITIVE_INFINITY ? 2 ** 31 - 2 : max, tooBig);
      // the version token is only needed by writers; compute it when asked
      let etag: string | undefined;
      return {
        body,
        get etag(): string {
          etag ??= etagOf(body);
          return etag;
        },
      };
    } finally {
      closeSync(fd);
    }
  }

  /** A large object (a NAR) as a stream, under the same guards as `get`; the reader bounds what it takes. */
  async openStream(key: string): Promise<Readable | undefined> {
    const opened = this.openRegular(key);
    if (!opened) return undefined;
    // a read buffer of the file's size up to 1 MiB: Node allocates the whole buffer for every
    // read, and most NARs of a closure are a few hundred bytes
    return createReadStream('', { fd: opened.fd, autoClose: true, highWaterMark: Math.min(1 << 20, Math.max(opened.st.size, 1 << 12)) });
  }

  /** Opens a regular file (see `get`), `undefined` when absent. */
  private openRegular(key: string): { fd: number; st: Stats } | undefined {
    let fd: number;
    try {
      fd = openUnder(this.root, this.dirs, safeKey(key));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP' || code === 'ENOTDIR') {
        throw new CacheError(
          `${this.url}/${key}: a symbolic link (or non-directory) on the way; file:// caches never follow links`,
          true,
          undefined,
          'not-regular-file',
        );
      }
      if (code === 'ENXIO' || code === 'ENODEV')
        throw new CacheError(`${this.url}/${key}: is a socket or device; file:// caches read only regular files`, true, undefined, 'not-regular-file');
      throw new CacheError(`${this.url}/${key}: ${(err as Error).message}`, false);
    }
    const st = fstatSync(fd);
    if (!st.isFile()) {
      closeSync(fd);
      const kind = st.isFIFO()
        ? 'a FIFO'
        : st.isCharacterDevice()
          ? 'a character device'
          : st.isBlockDevice()
            ? 'a block device'
            : st.isDirectory()
              ? 'a directory'
              : st.isSocket()
                ? 'a socket'
                : 'not a regular file';
      throw new CacheError(`${this.url}/${key}: is ${kind}; file:// caches read only regular files`, true, undefined, 'not-regular-file');
    }
    return { fd, st };
  }

  private atomicWrite(path: string, body: Buffer): void {
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    try {
      writeFileSync(fd, body);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  }

  async put(key: string, body: Buffer): Promise<void> {
    try {
      mkdirSync(this.root, { recursive: true });
      realDirs(this.root, safeKey(key), true);
      this.atomicWrite(join(this.root, key), body);
    } catch (err) {
      throw new CacheError(`${this.url}/${key}: ${(err as Error).message}`, (err as NodeJS.ErrnoException).code === 'EACCES');
    }
  }

  async putIf(key: string, body: Buffer, ifMatch: string | undefined): Promise<boolean> {
    const path = join(this.root, safeKey(key));
    try {
      mkdirSync(this.root, { recursive: true });
      realDirs(this.root, key, true);
    } catch (err) {
      throw new CacheError(`${this.url}/${key}: ${(err as Error).message}; file:// caches never write through links`, true, undefined, 'not-regular-file');
    }
    const lock = `${path}.lock`;
    // the lock holder is a writer between read and rename; a stale lock older than 30 s is broken
    for (let i = 0; ; i++) {
      try {
        closeSync(openSync(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644));
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new CacheError(`${this.url}/${key}: ${(err as Error).message}`, false);
        try {
          const age = Date.now() - statSync(lock).mtimeMs;
          if (age > 30_000) unlinkSync(lock);
        } catch {
          // gone already
        }
        if (i > 2000) throw new CacheError(`${this.url}/${key}: lock ${lock} held too long`, false);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    try {
      const cur = await this.get(key);
      if ((cur?.etag ?? undefined) !== ifMatch) return false;
      this.atomicWrite(path, body);
      return true;
    } finally {
      try {
        unlinkSync(lock);
      } catch {
        // nothing
      }
    }
  }
}

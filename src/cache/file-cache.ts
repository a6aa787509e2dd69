import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, fsyncSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CacheError, type CacheBackend, type CacheObject } from './backend.js';

function etagOf(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function safeKey(key: string): string {
  if (key.split('/').some((p) => p === '' || p === '.' || p === '..') || key.startsWith('/')) throw new CacheError(`illegal cache key ${JSON.stringify(key)}`, true);
  return key;
}

/**
 * file:// cache: temp file + rename for every write; conditional writes take a
 * per-object lock file (O_EXCL) so concurrent publishers on one host or NFS serialise.
 */
export class FileCache implements CacheBackend {
  readonly url: string;
  constructor(readonly root: string) {
    this.url = `file://${root}`;
  }

  async get(key: string): Promise<CacheObject | undefined> {
    try {
      const body = readFileSync(join(this.root, safeKey(key)));
      // the version token is only needed by writers; compute it when asked
      let etag: string | undefined;
      return {
        body,
        get etag(): string {
          etag ??= etagOf(body);
          return etag;
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CacheError(`${this.url}/${key}: ${(err as Error).message}`, false);
    }
  }

  private atomicWrite(path: string, body: Buffer): void {
    mkdirSync(dirname(path), { recursive: true });
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
      this.atomicWrite(join(this.root, safeKey(key)), body);
    } catch (err) {
      throw new CacheError(`${this.url}/${key}: ${(err as Error).message}`, (err as NodeJS.ErrnoException).code === 'EACCES');
    }
  }

  async putIf(key: string, body: Buffer, ifMatch: string | undefined): Promise<boolean> {
    const path = join(this.root, safeKey(key));
    mkdirSync(dirname(path), { recursive: true });
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


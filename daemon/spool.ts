import { lstatSync, mkdirSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildtraceError } from '../src/errors.js';
import { parseStorePath } from '../src/nix/store-path.js';
import { validateAgainst } from '../src/util/schema.js';
import { parseStrictJson } from '../src/util/strict-json.js';
import { readRegularFile } from '../src/util/read-input.js';
import type { BuildRecord } from './capture.js';

/** Names trace-hook gives finished records; its temp files start with a dot. */
const RECORD_NAME = /^[A-Za-z0-9_-]{1,200}\.json$/;
const REJECTED_DIR = 'rejected';

/**
 * The spool: one file per hook invocation. The daemon never follows a symlink
 * here, never trusts a record's size or content, and deletes a record only after
 * the trace it produced is committed.
 */
export class Spool {
  constructor(
    readonly dir: string,
    private readonly storeDir: string,
    private readonly maxBytes: number,
  ) {}

  ensure(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    mkdirSync(join(this.dir, REJECTED_DIR), { recursive: true, mode: 0o700 });
  }

  /** Finished record names, oldest-looking first (names are not timestamps; order is best effort). */
  list(): string[] {
    return readdirSync(this.dir)
      .filter((n) => !n.startsWith('.') && n !== REJECTED_DIR)
      .sort();
  }

  read(name: string): BuildRecord {
    const subject = join(this.dir, name);
    if (!RECORD_NAME.test(name)) throw new BuildtraceError('SPOOL_RECORD_INVALID', `${subject}: not a spool record name`, { subject });
    // a scan can queue a name again while its batch commits: a missing record is NOT_FOUND (already consumed)
    const text = readRegularFile(subject, 'spool record', {
      maxBytes: this.maxBytes,
      noFollow: true,
      invalidCode: 'SPOOL_RECORD_INVALID',
      missingCode: 'NOT_FOUND',
    }).toString('utf8');
    const json = parseStrictJson(text, subject, 8);
    const rec = validateAgainst<BuildRecord>('spool-record.schema.json', json, subject, 'SPOOL_RECORD_INVALID');
    try {
      const drv = parseStorePath(rec.drv, this.storeDir);
      if (!drv.name.endsWith('.drv')) throw new BuildtraceError('STORE_PATH_INVALID', `drv ${rec.drv} is not a .drv path`);
      for (const o of rec.outs) parseStorePath(o, this.storeDir);
    } catch (err) {
      throw new BuildtraceError('SPOOL_RECORD_INVALID', `${subject}: ${(err as Error).message}`, { subject, cause: err });
    }
    return { drv: rec.drv, outs: rec.outs };
  }

  /**
   * Whether `name` was modified within the last `ms` milliseconds: a record copied in under its
   * final name (`cp`, not the hook's rename) can be read while still empty or half written.
   */
  modifiedWithin(name: string, ms: number): boolean {
    const st = lstatSync(join(this.dir, name), { throwIfNoEntry: false });
    if (st === undefined) return false;
    const age = Date.now() - st.mtimeMs;
    // a time stamp far in the future (a skewed clock) must not keep a bad record forever
    return age > -1000 && age < ms;
  }

  /** Moves a record aside (the link itself if it is one) and writes why next to it. */
  reject(name: string, reason: string): void {
    const to = join(this.dir, REJECTED_DIR, name);
    try {
      renameSync(join(this.dir, name), to);
      writeFileSync(`${to}.reason`, `${reason}\n`, { mode: 0o600 });
    } catch {
      // A record that cannot even be moved is left where it is; it is retried at the next scan.
    }
  }

  remove(name: string): void {
    try {
      unlinkSync(join(this.dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  rejectedCount(): number {
    try {
      return readdirSync(join(this.dir, REJECTED_DIR)).filter((n) => !n.endsWith('.reason')).length;
    } catch {
      return 0;
    }
  }
}

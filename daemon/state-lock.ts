import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildtraceError } from '../src/errors.js';

/**
 * An exclusive lock on the daemon's stateDir, so two daemons never share one database.
 * It is SQLite's own POSIX lock on `daemon.lock`, held by an EXCLUSIVE transaction that is
 * never committed: the kernel drops it when the process dies (even by kill -9), so there is
 * no stale lock to clean up, and taking it never waits.
 */
export class StateLock {
  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
  ) {}

  static acquire(stateDir: string): StateLock {
    const file = join(stateDir, 'daemon.lock');
    const pidFile = join(stateDir, 'daemon.pid');
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { timeout: 0 });
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      db?.close();
      const busy = (err as { code?: string }).code === 'SQLITE_BUSY';
      if (!busy) throw new BuildtraceError('FILE_UNREADABLE', `cannot lock ${file}: ${(err as Error).message}`, { subject: file, cause: err });
      let holder = '';
      try {
        holder = ` (pid ${readFileSync(pidFile, 'utf8').trim()})`;
      } catch {
        // no pid note: the message names the lock alone
      }
      throw new BuildtraceError(
        'DAEMON_CONFLICT',
        `another trace-daemon${holder} is using stateDir ${stateDir} (it holds ${file}); two daemons must not share one database`,
        {
          subject: stateDir,
        },
      );
    }
    // for people and for the message above; the lock itself is what counts
    writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o644 });
    return new StateLock(db, file);
  }

  release(): void {
    this.db.close();
  }
}

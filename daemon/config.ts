import { join } from 'node:path';
import { BuildtraceError } from '../src/errors.js';
import { parseStrictJson } from '../src/util/strict-json.js';
import { readRegularFile } from '../src/util/read-input.js';
import { validateAgainst } from '../src/util/schema.js';
import type { TeeConfig } from './tee-provider.js';

export interface DaemonConfig {
  /** Absent in TEE mode: the key is generated inside the guest (daemon/tee-mode.ts). */
  readonly signingKeyFile?: string;
  readonly spoolDir: string;
  readonly stateDir: string;
  readonly socket: string;
  readonly storeDir: string;
  readonly storeInfo: 'auto' | 'db' | 'cli';
  readonly nixDb: string;
  readonly batchSize: number;
  readonly maxRecordBytes: number;
  readonly tee: TeeConfig;
  readonly caches: ReadonlyArray<{ readonly url: string; readonly uploadOutputs?: boolean; readonly buildTraceV2?: boolean; readonly tokenFile?: string }>;
  readonly uploadOutputs: boolean;
}

export const DEFAULT_SOCKET = '/run/buildtrace/daemon.sock';

const DEFAULTS: Omit<DaemonConfig, 'signingKeyFile'> = {
  spoolDir: '/var/spool/buildtrace',
  stateDir: '/var/lib/buildtrace',
  socket: DEFAULT_SOCKET,
  storeDir: '/nix/store',
  storeInfo: 'auto',
  nixDb: '/nix/var/nix/db/db.sqlite',
  batchSize: 500,
  maxRecordBytes: 65536,
  caches: [],
  uploadOutputs: false,
  tee: {
    provider: 'none',
    perTrace: false,
    allowSimulated: false,
    configfsPath: '/sys/kernel/config/tsm/report',
    snpguest: 'snpguest',
    vmpl: 0,
    machinesFile: '/etc/nix/machines',
  },
};

const MAX_CONFIG_BYTES = 1024 * 1024;

export function dbFile(c: DaemonConfig): string {
  return join(c.stateDir, 'buildtrace.db');
}

export function loadConfig(file: string): DaemonConfig {
  // a FIFO or a device named as the config must not hang or flood the start (symlinks are fine: NixOS /etc)
  const json = parseStrictJson(
    readRegularFile(file, 'config', { maxBytes: MAX_CONFIG_BYTES, noFollow: false, invalidCode: 'CONFIG_INVALID' }).toString('utf8'),
    file,
  );
  const partial = validateAgainst<Partial<Omit<DaemonConfig, 'tee'>> & { tee?: Partial<TeeConfig> }>('daemon-config.schema.json', json, file, 'CONFIG_INVALID');
  const c: DaemonConfig = { ...DEFAULTS, ...partial, tee: { ...DEFAULTS.tee, ...partial.tee } };
  // TEE mode: the key is made inside the guest; a key file would be one someone outside could hold.
  const teeMode = c.tee.provider !== 'none';
  if (teeMode && c.signingKeyFile !== undefined) {
    throw new BuildtraceError(
      'CONFIG_INVALID',
      `${file}: signingKeyFile must not be set with tee.provider ${JSON.stringify(c.tee.provider)}: in TEE mode the daemon generates its signing key inside the guest at start-up`,
      { subject: 'signingKeyFile' },
    );
  }
  if (!teeMode && c.signingKeyFile === undefined)
    throw new BuildtraceError('CONFIG_INVALID', `${file}: signingKeyFile is required (without a TEE provider the key comes from a Nix key file)`, {
      subject: 'signingKeyFile',
    });
  return c;
}

const MAX_KEY_BYTES = 64 * 1024;

/**
 * Reads a secret key file without blocking (a FIFO or a device under its name is
 * refused, not read), refusing one that other users could read or change: any group
 * or other read/write bit (chmod 600 or 400). A symlink is followed; the target is checked.
 */
export function readKeyFile(file: string): string {
  return readRegularFile(file, 'signing key', {
    maxBytes: MAX_KEY_BYTES,
    noFollow: false,
    invalidCode: 'KEY_INVALID',
    check: (st) => {
      // Whoever owns the file can chmod it or replace the key (OpenSSH's rule for private
      // keys): only the daemon's own user or root may.
      const me = process.getuid?.();
      if (me !== undefined && st.uid !== me && st.uid !== 0)
        throw new BuildtraceError(
          'KEY_INVALID',
          `signing key ${file} is owned by uid ${st.uid}, not by the daemon's user (uid ${me}) or root; run: chown ${me} ${file}`,
          { subject: file },
        );
      const loose = st.mode & 0o066;
      if (loose !== 0) {
        const who = [
          loose & 0o004 ? 'readable by every user' : '',
          loose & 0o002 ? 'writable by every user' : '',
          loose & 0o040 ? 'readable by its group' : '',
          loose & 0o020 ? 'writable by its group' : '',
        ].filter(Boolean);
        throw new BuildtraceError(
          'KEY_INVALID',
          `signing key ${file} is ${who.join(', ')} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${file}`,
          { subject: file },
        );
      }
    },
  }).toString('utf8');
}

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { BuildtraceError } from '../src/errors.js';
import { parseStrictJson } from '../src/util/strict-json.js';
import { readTextInput } from '../src/util/read-input.js';
import { validateAgainst } from '../src/util/schema.js';
import type { TeeConfig } from './tee-provider.js';

export interface DaemonConfig {
  readonly signingKeyFile: string;
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
  tee: { provider: 'none', perTrace: false, allowSimulated: false, configfsPath: '/sys/kernel/config/tsm/report', snpguest: 'snpguest', vmpl: 0 },
};

export function dbFile(c: DaemonConfig): string {
  return join(c.stateDir, 'buildtrace.db');
}

export function loadConfig(file: string): DaemonConfig {
  const json = parseStrictJson(readTextInput(file, 'config'), file);
  const partial = validateAgainst<Partial<Omit<DaemonConfig, 'tee'>> & { signingKeyFile: string; tee?: Partial<TeeConfig> }>('daemon-config.schema.json', json, file, 'CONFIG_INVALID');
  return { ...DEFAULTS, ...partial, tee: { ...DEFAULTS.tee, ...partial.tee } };
}

/** Reads a key file, refusing one that other users can read. */
export function readKeyFile(file: string): string {
  const text = readTextInput(file, 'signing key');
  if ((statSync(file).mode & 0o004) !== 0) {
    throw new BuildtraceError('KEY_INVALID', `signing key ${file} is readable by every user; run: chmod 600 ${file}`, { subject: file });
  }
  return text;
}

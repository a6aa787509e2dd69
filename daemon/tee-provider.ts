import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmdirSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BuildtraceError } from '../src/errors.js';
import { createSimulatedPlatform, pem, type SimulatedPlatform } from '../src/tee/simulated.js';
import { detectEvidence } from '../src/tee/tdx-quote.js';
import type { NewEvidence } from './trace-db.js';

const execFileP = promisify(execFile);

type TeeProviderName = 'none' | 'sev-snp' | 'tdx' | 'snpguest' | 'simulated';

interface EvidenceCert {
  readonly role: 'vcek' | 'vlek' | 'ask' | 'asvk' | 'ark';
  readonly der: Uint8Array;
}

interface CollectedEvidence {
  readonly format: 'sev-snp' | 'tdx';
  readonly report: Uint8Array;
  readonly certs: readonly EvidenceCert[];
  readonly simulated: boolean;
}

export interface TeeProvider {
  readonly name: TeeProviderName;
  /** Produces evidence whose REPORT_DATA is exactly `reportData` (64 bytes). */
  attest(reportData: Uint8Array): Promise<CollectedEvidence>;
}

export interface TeeConfig {
  readonly provider: TeeProviderName;
  readonly perTrace: boolean;
  readonly allowSimulated: boolean;
  readonly configfsPath: string;
  readonly snpguest: string;
  readonly vmpl: number;
  /** Name of the key generated in TEE mode (default <hostname>-tee). */
  readonly keyName?: string;
  /** Nix's machines file, checked for remote builders in TEE mode. */
  readonly machinesFile: string;
  /** The MEASUREMENT the simulated provider's reports carry (96 hex digits), e.g. one computed by trace-verify measure. */
  readonly simulatedMeasurement?: string;
}

/** GHCB certificate table GUIDs (GHCB spec 56421 §4.1.8.1). */
const CERT_GUIDS: Record<string, EvidenceCert['role']> = {
  '63da758d-e664-4564-adc5-f4b93be8accd': 'vcek',
  'a8074bc2-a25a-483e-aae6-39c045a0b8a1': 'vlek',
  '4ab7b379-bbac-4fe4-a02f-05aef327c782': 'ask',
  'c0b406a4-a803-4952-9743-3fb6014cd0ae': 'ark',
};

function guidString(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Parses the SEV auxblob certificate table: {GUID, offset, length} entries, all-zero terminated. */
function parseCertTable(aux: Uint8Array): EvidenceCert[] {
  const out: EvidenceCert[] = [];
  const dv = new DataView(aux.buffer, aux.byteOffset, aux.byteLength);
  for (let p = 0; p + 24 <= aux.length; p += 24) {
    const guid = aux.subarray(p, p + 16);
    const off = dv.getUint32(p + 16, true);
    const len = dv.getUint32(p + 20, true);
    if (guid.every((x) => x === 0) && off === 0 && len === 0) break;
    if (off + len > aux.length) throw new BuildtraceError('EVIDENCE_INVALID', 'auxblob certificate table entry runs past the blob');
    const role = CERT_GUIDS[guidString(guid)];
    if (role) out.push({ role, der: aux.slice(off, off + len) });
  }
  return out;
}

/** configfs-tsm (Linux >= 6.7): plain file I/O, one directory per request, generation checked. */
class ConfigfsProvider implements TeeProvider {
  constructor(
    readonly name: 'sev-snp' | 'tdx',
    private readonly root: string,
    private readonly vmpl: number,
  ) {}

  async attest(reportData: Uint8Array): Promise<CollectedEvidence> {
    if (reportData.length !== 64) throw new BuildtraceError('USAGE', 'REPORT_DATA must be exactly 64 bytes');
    let dir: string;
    try {
      dir = mkdtempSync(join(this.root, 'buildtrace-'));
    } catch (err) {
      throw new BuildtraceError(
        'TEE_UNAVAILABLE',
        `configfs-tsm is not available at ${this.root} (${(err as NodeJS.ErrnoException).code}); is this a confidential VM with Linux >= 6.7?`,
        { subject: this.root },
      );
    }
    try {
      const provider = readFileSync(join(dir, 'provider'), 'utf8').trim();
      const want = this.name === 'sev-snp' ? 'sev_guest' : 'tdx_guest';
      if (provider !== want) throw new BuildtraceError('TEE_UNAVAILABLE', `configfs-tsm provider is ${JSON.stringify(provider)}, not ${want}`);
      const gen0 = Number(readFileSync(join(dir, 'generation'), 'utf8'));
      let writes = 0;
      if (this.name === 'sev-snp' && existsSync(join(dir, 'privlevel'))) {
        writeFileSync(join(dir, 'privlevel'), String(this.vmpl));
        writes++;
      }
      writeFileSync(join(dir, 'inblob'), reportData);
      writes++;
      const report = readFileSync(join(dir, 'outblob'));
      const aux = this.name === 'sev-snp' && existsSync(join(dir, 'auxblob')) ? readFileSync(join(dir, 'auxblob')) : Buffer.alloc(0);
      const gen1 = Number(readFileSync(join(dir, 'generation'), 'utf8'));
      if (gen1 !== gen0 + writes)
        throw new BuildtraceError('TEE_UNAVAILABLE', `configfs-tsm generation moved from ${gen0} to ${gen1}: another writer interfered`);
      const format = detectEvidence(report);
      if (format === undefined) throw new BuildtraceError('EVIDENCE_INVALID', `configfs-tsm returned ${report.length} bytes that are not a report or quote`);
      return { format, report, certs: aux.length > 0 ? parseCertTable(aux) : [], simulated: false };
    } finally {
      try {
        rmdirSync(dir);
      } catch {
        // configfs entries are removed with rmdir; nothing else to clean
      }
    }
  }
}

/** virtee snpguest through /dev/sev-guest, for kernels without configfs-tsm. */
class SnpguestProvider implements TeeProvider {
  readonly name = 'snpguest' as const;
  constructor(
    private readonly cmd: string,
    private readonly vmpl: number,
  ) {}

  async attest(reportData: Uint8Array): Promise<CollectedEvidence> {
    const dir = mkdtempSync(join(tmpdir(), 'buildtrace-snpguest-'));
    writeFileSync(join(dir, 'request.bin'), reportData);
    try {
      // snpguest's default VMPL is 1; ask for the configured one explicitly.
      await execFileP(this.cmd, ['report', join(dir, 'report.bin'), join(dir, 'request.bin'), '-v', String(this.vmpl)]);
      await execFileP(this.cmd, ['certificates', 'der', join(dir, 'certs')]);
    } catch (err) {
      throw new BuildtraceError('TEE_UNAVAILABLE', `snpguest failed: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }
    const certs: EvidenceCert[] = [];
    for (const role of ['vcek', 'vlek', 'ask', 'asvk', 'ark'] as const) {
      const f = join(dir, 'certs', `${role}.der`);
      if (existsSync(f)) certs.push({ role, der: readFileSync(f) });
    }
    return { format: 'sev-snp', report: readFileSync(join(dir, 'report.bin')), certs, simulated: false };
  }
}

/** Test provider: real SNP byte layout, roots generated at start-up and written to `rootsDir`. */
class SimulatedProvider implements TeeProvider {
  readonly name = 'simulated' as const;
  readonly platform: SimulatedPlatform;
  constructor(
    readonly rootsDir: string,
    measurement?: string,
  ) {
    this.platform = createSimulatedPlatform(measurement === undefined ? {} : { measurement: Buffer.from(measurement, 'hex') });
    mkdirSync(rootsDir, { recursive: true, mode: 0o755 });
    // Each start simulates a new platform; earlier platforms' roots stay, so evidence from
    // earlier boots still verifies (as a real AMD ARK outlives reboots).
    const tag = createHash('sha256').update(this.platform.ark).digest('hex').slice(0, 16);
    writeFileSync(join(rootsDir, `ark-${tag}.pem`), pem(this.platform.ark));
    writeFileSync(join(rootsDir, `ask-${tag}.pem`), pem(this.platform.ask));
  }

  async attest(reportData: Uint8Array): Promise<CollectedEvidence> {
    return {
      format: 'sev-snp',
      report: this.platform.report(reportData),
      certs: [
        { role: 'vcek', der: this.platform.vcek },
        { role: 'ask', der: this.platform.ask },
        { role: 'ark', der: this.platform.ark },
      ],
      simulated: true,
    };
  }
}

export function createTeeProvider(c: TeeConfig, stateDir: string, warn: (m: string) => void): TeeProvider | undefined {
  if (c.simulatedMeasurement !== undefined && c.provider !== 'simulated')
    throw new BuildtraceError('CONFIG_INVALID', 'tee.simulatedMeasurement is for the simulated provider only; hardware reports its own launch measurement', {
      subject: 'tee.simulatedMeasurement',
    });
  switch (c.provider) {
    case 'none':
      return undefined;
    case 'sev-snp':
    case 'tdx':
      return new ConfigfsProvider(c.provider, c.configfsPath, c.vmpl);
    case 'snpguest':
      return new SnpguestProvider(c.snpguest, c.vmpl);
    case 'simulated': {
      if (!c.allowSimulated) {
        throw new BuildtraceError(
          'CONFIG_INVALID',
          'tee.provider "simulated" also needs tee.allowSimulated: true — it is for tests and demos, never for production builders',
          { subject: 'tee.provider' },
        );
      }
      const p = new SimulatedProvider(join(stateDir, 'simulated-tee', 'roots'), c.simulatedMeasurement);
      warn(
        '\n' +
          '*************************************************************************\n' +
          '* WARNING: SIMULATED TEE. Evidence from this daemon proves NOTHING about *\n' +
          '* the hardware. Its roots are self-made: ' +
          p.rootsDir.padEnd(31).slice(0, 31) +
          ' *\n' +
          '* Never enable tee.provider "simulated" on a production builder.       *\n' +
          '*************************************************************************\n',
      );
      return p;
    }
  }
}

/** The database row for evidence just collected: what it binds, and how to recompute it. */
export function evidenceRecord(
  kind: 'key' | 'trace',
  keyFp: string,
  provider: TeeProvider,
  ev: CollectedEvidence,
  preimage: Buffer,
  reportData: Buffer,
): NewEvidence {
  return {
    kind,
    keyFp,
    provider: provider.name,
    format: ev.format,
    simulated: ev.simulated,
    report: ev.report,
    certs: ev.certs,
    preimage,
    reportData: reportData.toString('hex'),
    collectedAt: new Date().toISOString(),
  };
}

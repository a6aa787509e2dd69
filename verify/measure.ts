import { LIMIT_FLAGS } from '../src/cache/limits.js';
import { BuildtraceError, EXIT_OK, EXIT_REJECTED } from '../src/errors.js';
import { DrvLoader } from '../src/store/drv-loader.js';
import { cpuTypeSignature } from '../src/tee/measure/cpu-types.js';
import { MAX_FIRMWARE_BYTES } from '../src/tee/measure/ovmf.js';
import { snpMeasurement, svsmMeasurement } from '../src/tee/measure/snp-measurement.js';
import { VMM_TYPES, type VmmType } from '../src/tee/measure/vmsa.js';
import { parseAt } from '../src/tee/evidence.js';
import type { DerivedMeasurementSpec } from '../src/tee/tee-policy.js';
import { parseArgs } from '../src/util/args.js';
import { readRegularFile } from '../src/util/read-input.js';
import { type DeriveContext, deriveMeasurements, derivedProblems, type DerivedChain } from '../src/verify/derived-measurement.js';
import { loadTrustPolicy, type TrustPolicy } from '../src/verify/trust-policy.js';
import type { VerifyOutput } from '../src/verify/verdict.js';
import { targetOfPath } from '../src/verify/target.js';
import { DEFAULT_NIX_DB, openConsumerSources, storeTargetFacts } from './consumer-sources.js';

export const MEASURE_HELP = `  trace-verify measure (IMAGE --policy FILE [--cache URL]... [--db FILE]...
                        | --firmware FILE [--kernel FILE [--initrd FILE] [--append STR]])
               --vcpus N --vcpu-type TYPE [--guest-features HEX] [--vmm-type QEMU|ec2|gce] [--json]
      the expected SEV-SNP launch measurement (96 hex digits) of a guest QEMU starts with this
      OVMF (and direct-boots this kernel, initrd and command line), with sev-snp-measure's
      parameter and CPU type names (EPYC-v4, EPYC-Milan, EPYC-Genoa, EPYC-Turin, ...);
      --guest-features defaults to 0x1. IMAGE (a builder image .drv or output path holding
      firmware.fd, kernel, initrd, cmdline; docs/rebuilding-builders.md) is first verified like
      trace-verify IMAGE under the policy's trust tree; the bytes measured are the ones whose
      NAR hash the verified claims attest, and the chain behind the number is printed.
      Exit 1 when IMAGE does not verify. --svsm FILE --vars-size N: Coconut SVSM (QEMU).`;

const MAX_BOOT_BYTES = 1 << 30;

function readFile(file: string, what: string, max: number): Buffer {
  return readRegularFile(file, what, { maxBytes: max, noFollow: false, invalidCode: 'USAGE' });
}

function launchFrom(a: ReturnType<typeof parseArgs>): { vcpus: number; vcpuType: string; guestFeatures: string; vmmType: VmmType; vcpuSignature: number } {
  const n = a.values.get('vcpus');
  if (n === undefined || !/^[0-9]{1,4}$/.test(n)) throw new BuildtraceError('USAGE', 'measure needs --vcpus N (the vCPU count of the launch)');
  const vmm = (a.values.get('vmm-type') ?? 'QEMU') as VmmType;
  if (!VMM_TYPES.includes(vmm)) throw new BuildtraceError('USAGE', `--vmm-type must be one of ${VMM_TYPES.join(', ')}`);
  const type = a.values.get('vcpu-type');
  // EC2 and GCE put a fixed value where QEMU puts the vCPU signature
  if (type === undefined && vmm === 'QEMU') throw new BuildtraceError('USAGE', 'measure needs --vcpu-type TYPE (the QEMU CPU model, e.g. EPYC-v4)');
  const features = a.values.get('guest-features') ?? '0x1';
  if (!/^0x[0-9a-fA-F]{1,16}$/.test(features)) throw new BuildtraceError('USAGE', `--guest-features must be hex like 0x1, not ${JSON.stringify(features)}`);
  return {
    vcpus: Number(n),
    vcpuType: type ?? '(none)',
    guestFeatures: features,
    vmmType: vmm,
    vcpuSignature: type === undefined ? 0 : cpuTypeSignature(type, '--vcpu-type'),
  };
}

export async function measureCommand(rest: string[]): Promise<number> {
  const a = parseArgs(rest, {
    booleans: ['json', 'no-local-store'],
    strings: [
      'firmware',
      'kernel',
      'initrd',
      'append',
      'vcpus',
      'vcpu-type',
      'guest-features',
      'vmm-type',
      'policy',
      'at',
      'nix-db',
      'svsm',
      'vars-size',
      ...LIMIT_FLAGS,
    ],
    repeated: ['cache', 'db'],
  });
  if (a.flags.has('help')) {
    process.stdout.write(`Usage:\n${MEASURE_HELP}\n`);
    return EXIT_OK;
  }
  const launch = launchFrom(a);
  const json = a.flags.has('json');
  const image = a.positionals[0];
  if (a.positionals.length > 1) throw new BuildtraceError('USAGE', `unexpected argument ${a.positionals[1]}`);
  const firmwareFile = a.values.get('firmware');
  if ((image === undefined) === (firmwareFile === undefined)) throw new BuildtraceError('USAGE', 'measure needs an IMAGE or --firmware FILE (one of them)');
  if (!a.values.has('kernel') && (a.values.has('initrd') || a.values.has('append'))) throw new BuildtraceError('USAGE', '--initrd and --append need --kernel');
  const params = { vcpus: launch.vcpus, vcpuType: launch.vcpuType, guestFeatures: launch.guestFeatures, vmmType: launch.vmmType };

  if (firmwareFile !== undefined) {
    const firmware = readFile(firmwareFile, 'firmware', MAX_FIRMWARE_BYTES);
    let m: Buffer;
    const svsm = a.values.get('svsm');
    if (svsm !== undefined) {
      if (a.values.has('kernel') || launch.vmmType !== 'QEMU') throw new BuildtraceError('USAGE', '--svsm is for QEMU without --kernel');
      const vars = a.values.get('vars-size');
      if (vars === undefined || !/^[0-9]{1,12}$/.test(vars)) throw new BuildtraceError('USAGE', '--svsm needs --vars-size N (the OVMF_VARS size in bytes)');
      m = svsmMeasurement({
        ovmf: firmware,
        svsm: readFile(svsm, 'SVSM image', MAX_FIRMWARE_BYTES),
        varsSize: Number(vars),
        vcpus: launch.vcpus,
        vcpuSignature: launch.vcpuSignature,
      });
    } else {
      const kernel = a.values.get('kernel');
      const initrd = a.values.get('initrd');
      const append = a.values.get('append');
      m = snpMeasurement({
        firmware,
        ...(kernel !== undefined
          ? {
              boot: {
                kernel: readFile(kernel, 'kernel', MAX_BOOT_BYTES),
                ...(initrd !== undefined ? { initrd: readFile(initrd, 'initrd', MAX_BOOT_BYTES) } : {}),
                ...(append !== undefined ? { append } : {}),
              },
            }
          : {}),
        vcpus: launch.vcpus,
        vcpuSignature: launch.vcpuSignature,
        guestFeatures: BigInt(launch.guestFeatures),
        vmm: launch.vmmType,
        subject: firmwareFile,
      });
    }
    const hex = m.toString('hex');
    process.stdout.write(json ? `${JSON.stringify({ measurement: hex, mode: svsm ? 'snp:svsm' : 'snp', launch: params }, null, 2)}\n` : `${hex}\n`);
    return EXIT_OK;
  }

  // IMAGE: verified first, under the policy file's trust tree
  const policyFile = a.values.get('policy');
  if (!policyFile) throw new BuildtraceError('USAGE', 'measure IMAGE needs --policy FILE (its trust tree is the image policy)');
  if (a.values.has('svsm')) throw new BuildtraceError('USAGE', '--svsm is for --firmware only');
  const policy = loadTrustPolicy(policyFile);
  const { sources, facts, store, limits } = await openConsumerSources(a);
  const spec: DerivedMeasurementSpec = { image: image as string, imagePolicy: policy.trust, ...params };
  const loader = new DrvLoader('/nix/store', Number.POSITIVE_INFINITY);
  const derived = await deriveWithLocalStore(policy, a, { sources, facts, loader, limits, also: [{ identity: '(command line)', spec }] }).finally(() =>
    store?.close(),
  );
  const chain = derived.chains.find((c) => c.identity === '(command line)') as DerivedChain;
  if (json)
    process.stdout.write(
      `${JSON.stringify({ measurement: chain.measurement ?? null, mode: 'snp', launch: params, chain: { ...chain, policy: policyFile } }, null, 2)}\n`,
    );
  else if (chain.ok) process.stdout.write(`${chain.measurement}\n${derivedLines([chain], policyFile).join('\n')}\n`);
  else process.stdout.write(`NOT MEASURED ${chain.image}\n  ${chain.code}: ${chain.detail}\n`);
  return chain.ok ? EXIT_OK : EXIT_REJECTED;
}

/**
 * deriveMeasurements as trace-verify and `measure` run it: `--at` from the command line, and an
 * image given as an output path taken through the target's door over the local Nix database
 * (`--nix-db`), its recorded deriver only a hint.
 */
export async function deriveWithLocalStore(
  policy: TrustPolicy,
  a: ReturnType<typeof parseArgs>,
  ctx: Omit<DeriveContext, 'at' | 'deriverOf'>,
): Promise<{ policy: TrustPolicy; chains: DerivedChain[] }> {
  const atText = a.values.get('at');
  const imageFacts = storeTargetFacts(ctx.loader, a.values.get('nix-db') ?? DEFAULT_NIX_DB);
  return deriveMeasurements(policy, {
    ...ctx,
    ...(atText ? { at: parseAt(atText) } : {}),
    deriverOf: async (p) => (await targetOfPath(p, imageFacts)).drv,
  }).finally(() => imageFacts.close());
}

/** The chain behind each derived measurement, for trace-verify's text output. */
export function derivedLines(chains: readonly DerivedChain[], policyFile?: string): string[] {
  const lines: string[] = [];
  for (const c of chains) {
    const who = c.identity === '(command line)' ? '' : ` for ${c.identity}`;
    if (c.ok) {
      lines.push(`  derived measurement${who}: ${c.measurement}`);
      lines.push(`    image ${c.imagePath} (${c.image}, output ${c.output}), NAR sha256 ${c.narSha256}`);
      lines.push(`    verified under ${c.imagePolicy}${policyFile ? ` (${policyFile})` : ''}; signers: ${(c.signers ?? []).join(', ')}`);
      lines.push(`    launch: ${c.launch.vcpus} × ${c.launch.vcpuType}, guest features ${c.launch.guestFeatures}, ${c.launch.vmmType}`);
    } else lines.push(`  derived measurement${who} FAILED (${c.code}): ${c.detail}`);
  }
  return lines;
}

/** A verdict with the derivations behind it: their chains, and on failure the links that broke. */
export function withDerived(out: VerifyOutput, chains: readonly DerivedChain[]): VerifyOutput & { derivedMeasurements?: readonly DerivedChain[] } {
  if (chains.length === 0) return out;
  return { ...out, derivedMeasurements: chains, problems: out.verified ? out.problems : [...derivedProblems(chains, out.keyStatus), ...out.problems] };
}

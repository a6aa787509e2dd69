import { BuildtraceError } from '../../errors.js';

/**
 * The vCPU signature (CPUID Fn0000_0001_EAX) the VMM puts in RDX of every initial VMSA, so it
 * is part of the measurement. Names are QEMU's CPU model names, as sev-snp-measure accepts
 * them; the family/model/stepping values are those of QEMU's builtin_x86_defs.
 */
function cpuSignature(family: number, model: number, stepping: number): number {
  // AMD CPUID specification #25481: family above 0xf is 0xf plus the extended family
  const [famLow, famHigh] = family > 0xf ? [0xf, (family - 0xf) & 0xff] : [family, 0];
  return ((famHigh << 20) | (((model >> 4) & 0xf) << 16) | (famLow << 8) | ((model & 0xf) << 4) | (stepping & 0xf)) >>> 0;
}

const EPYC = cpuSignature(23, 1, 2);
const ROME = cpuSignature(23, 49, 0);
const MILAN = cpuSignature(25, 1, 1);
const GENOA = cpuSignature(25, 17, 0);

const CPU_TYPES: Readonly<Record<string, number>> = {
  EPYC: EPYC,
  'EPYC-v1': EPYC,
  'EPYC-v2': EPYC,
  'EPYC-IBPB': EPYC,
  'EPYC-v3': EPYC,
  'EPYC-v4': EPYC,
  'EPYC-Rome': ROME,
  'EPYC-Rome-v1': ROME,
  'EPYC-Rome-v2': ROME,
  'EPYC-Rome-v3': ROME,
  'EPYC-Milan': MILAN,
  'EPYC-Milan-v1': MILAN,
  'EPYC-Milan-v2': MILAN,
  'EPYC-Genoa': GENOA,
  'EPYC-Genoa-v1': GENOA,
  'EPYC-Turin': cpuSignature(26, 0, 0),
};

export function cpuTypeSignature(name: string, subject: string): number {
  const sig = Object.hasOwn(CPU_TYPES, name) ? CPU_TYPES[name] : undefined;
  if (sig === undefined)
    throw new BuildtraceError('USAGE', `${subject}: unknown vCPU type ${JSON.stringify(name)} (one of ${Object.keys(CPU_TYPES).join(', ')})`, { subject });
  return sig;
}

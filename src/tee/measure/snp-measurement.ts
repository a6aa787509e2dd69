import { BuildtraceError } from '../../errors.js';
import { hashesPage, PADDED_TABLE_LEN, type DirectBoot } from './kernel-hashes.js';
import { LaunchDigest, PAGE_SIZE } from './launch-digest.js';
import { apResetAddress, hashesTableAddress, parseFirmware, SectionType, svsmEntry, type FirmwareImage } from './ovmf.js';
import { BSP_RESET_EIP, resetVmsa, svsmVmsa, type VmmType } from './vmsa.js';

/**
 * The expected SEV-SNP MEASUREMENT of a guest QEMU (or EC2/GCE) launches with this firmware,
 * optionally direct-booting a kernel: the firmware's pages, then the pages its SEV metadata
 * names (in its order), then one VMSA per vCPU (SEV-SNP ABI spec, SNP_LAUNCH_UPDATE; QEMU
 * target/i386/sev.c). Launch parameters must be those of the real launch: the vCPU count and
 * type and the guest features are all inside the digest.
 */
interface SnpLaunch {
  readonly firmware: Uint8Array;
  /** Direct kernel boot (QEMU -kernel/-initrd/-append); absent: the firmware boots on its own. */
  readonly boot?: DirectBoot;
  readonly vcpus: number;
  readonly vcpuSignature: number;
  /** The VMSA's SEV_FEATURES (sev-snp-measure --guest-features; 0x1 = SNPActive). */
  readonly guestFeatures: bigint;
  readonly vmm?: VmmType;
  /** A digest already computed over the firmware pages, instead of hashing them again. */
  readonly firmwareDigest?: Uint8Array;
  /** A name for the firmware in error messages. */
  readonly subject?: string;
}

/** A bound on the vCPUs (a VMSA page each): QEMU's KVM limit for one guest is below this. */
const MAX_VCPUS = 4096;

function checkVcpus(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_VCPUS)
    throw new BuildtraceError('USAGE', `vCPU count must be an integer from 1 to ${MAX_VCPUS}, not ${n}`, { subject: 'vcpus' });
}

/** The pages the firmware's SEV metadata names, in its order (EC2 measures the CPUID page last). */
function metadataPages(ld: LaunchDigest, fw: FirmwareImage, boot: DirectBoot | undefined, vmm: VmmType, subject: string): void {
  const hasHashes = fw.sections.some((s) => s.type === SectionType.snpKernelHashes);
  if (boot && !hasHashes)
    throw new BuildtraceError(
      'FIRMWARE_INVALID',
      `${subject}: a kernel is given but the firmware's SEV metadata has no kernel hashes section (use an AmdSev OVMF build)`,
      {
        subject,
      },
    );
  for (const s of fw.sections) {
    switch (s.type) {
      case SectionType.snpSecMem:
        if (vmm === 'gce') ld.unmeasuredPages(s.gpa, s.size);
        else ld.zeroPages(s.gpa, s.size);
        break;
      case SectionType.snpSecrets:
        ld.secretsPage(s.gpa);
        break;
      case SectionType.cpuid:
        if (vmm !== 'ec2') ld.cpuidPage(s.gpa);
        break;
      case SectionType.svsmCaa:
        ld.zeroPages(s.gpa, s.size);
        break;
      case SectionType.snpKernelHashes: {
        if (!boot) {
          ld.zeroPages(s.gpa, s.size);
          break;
        }
        const table = hashesTableAddress(fw, subject);
        if (table === undefined || table < s.gpa || table - s.gpa + PADDED_TABLE_LEN > PAGE_SIZE)
          throw new BuildtraceError(
            'FIRMWARE_INVALID',
            `${subject}: the SEV hash table address ${table === undefined ? '(none)' : `0x${table.toString(16)}`} does not lie in the kernel hashes section at 0x${s.gpa.toString(16)}`,
            { subject },
          );
        ld.normalPages(s.gpa, hashesPage(boot, table - s.gpa));
        break;
      }
    }
  }
  if (vmm === 'ec2') for (const s of fw.sections) if (s.type === SectionType.cpuid) ld.cpuidPage(s.gpa);
}

export function snpMeasurement(launch: SnpLaunch): Buffer {
  const subject = launch.subject ?? 'firmware';
  const vmm = launch.vmm ?? 'QEMU';
  checkVcpus(launch.vcpus);
  const fw = parseFirmware(launch.firmware, subject);
  const apEip = apResetAddress(fw, subject);
  const ld = new LaunchDigest(launch.firmwareDigest);
  if (!launch.firmwareDigest) ld.normalPages(fw.gpa, fw.data);
  metadataPages(ld, fw, launch.boot, vmm, subject);
  const bsp = resetVmsa(BSP_RESET_EIP, launch.vcpuSignature, launch.guestFeatures, vmm);
  const ap = launch.vcpus > 1 ? resetVmsa(apEip, launch.vcpuSignature, launch.guestFeatures, vmm) : bsp;
  for (let i = 0; i < launch.vcpus; i++) ld.vmsaPage(i === 0 ? bsp : ap);
  return ld.digest();
}

/** sev-snp-measure's snp:ovmf-hash: the digest over the firmware pages alone. */
export function firmwareDigest(firmware: Uint8Array, subject = 'firmware'): Buffer {
  const fw = parseFirmware(firmware, subject);
  const ld = new LaunchDigest();
  ld.normalPages(fw.gpa, fw.data);
  return ld.digest();
}

/**
 * SEV-SNP with a Coconut SVSM (QEMU only): OVMF below 4 GiB, the OVMF variable store below it,
 * the SVSM image below that; the SVSM's metadata decides the rest, and every vCPU starts at
 * the SVSM's entry.
 */
export function svsmMeasurement(launch: { ovmf: Uint8Array; svsm: Uint8Array; varsSize: number; vcpus: number; vcpuSignature: number }): Buffer {
  checkVcpus(launch.vcpus);
  const ovmf = parseFirmware(launch.ovmf, 'OVMF');
  if (!Number.isInteger(launch.varsSize) || launch.varsSize < 0 || launch.varsSize % PAGE_SIZE !== 0 || launch.varsSize > ovmf.gpa)
    throw new BuildtraceError('USAGE', `OVMF variable store size ${launch.varsSize} must be a whole number of pages below the firmware`, {
      subject: 'vars-size',
    });
  const svsm = parseFirmware(launch.svsm, 'SVSM', ovmf.gpa - launch.varsSize);
  const ld = new LaunchDigest();
  ld.normalPages(ovmf.gpa, ovmf.data);
  ld.normalPages(svsm.gpa, svsm.data);
  metadataPages(ld, svsm, undefined, 'QEMU', 'SVSM');
  const vmsa = svsmVmsa(svsmEntry(svsm, 'SVSM'), launch.vcpuSignature);
  for (let i = 0; i < launch.vcpus; i++) ld.vmsaPage(vmsa);
  return ld.digest();
}

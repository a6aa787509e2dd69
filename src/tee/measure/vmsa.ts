import { PAGE_SIZE } from './launch-digest.js';

/**
 * The initial VMSA (the encrypted register save area, AMD APM vol. 2 table B-4) that the VMM
 * hands the PSP for each vCPU: reset state at the reset vector, plus what KVM/QEMU set
 * (EFER.SVME, CR4.MCE, the PAT, RDX = vCPU signature, the guest's SEV features, x87/SSE
 * defaults). The BSP starts at 0xfffffff0, every AP at the firmware's SEV-ES reset block.
 * EC2 and GCE differ from QEMU in a few fields (as sev-snp-measure documents them).
 */
export type VmmType = 'QEMU' | 'ec2' | 'gce';
export const VMM_TYPES: readonly VmmType[] = ['QEMU', 'ec2', 'gce'];

export const BSP_RESET_EIP = 0xfffffff0;

/** Byte offsets in the save area (APM vol. 2 table B-4). */
const Off = {
  es: 0x00,
  cs: 0x10,
  ss: 0x20,
  ds: 0x30,
  fs: 0x40,
  gs: 0x50,
  gdtr: 0x60,
  ldtr: 0x70,
  idtr: 0x80,
  tr: 0x90,
  efer: 0xd0,
  cr4: 0x148,
  cr0: 0x158,
  dr7: 0x160,
  dr6: 0x168,
  rflags: 0x170,
  rip: 0x178,
  gPat: 0x268,
  rdx: 0x310,
  sevFeatures: 0x3b0,
  xcr0: 0x3e8,
  mxcsr: 0x408,
  x87Fcw: 0x410,
} as const;

interface Segment {
  readonly selector: number;
  readonly attrib: number;
  readonly limit: number;
  readonly base: number;
}

function seg(page: Buffer, at: number, s: Segment): void {
  page.writeUInt16LE(s.selector, at);
  page.writeUInt16LE(s.attrib, at + 2);
  page.writeUInt32LE(s.limit, at + 4);
  page.writeBigUInt64LE(BigInt(s.base), at + 8);
}

interface Registers {
  readonly segments: Readonly<Record<'es' | 'cs' | 'ss' | 'ds' | 'fs' | 'gs' | 'gdtr' | 'ldtr' | 'idtr' | 'tr', Segment>>;
  readonly cr0: number;
  readonly rip: number;
  readonly gPat: bigint;
  readonly rdx: number;
  readonly sevFeatures: bigint;
  readonly mxcsr: number;
  readonly fcw: number;
}

function page(r: Registers): Buffer {
  const p = Buffer.alloc(PAGE_SIZE);
  for (const [name, s] of Object.entries(r.segments)) seg(p, Off[name as keyof typeof r.segments], s);
  p.writeBigUInt64LE(0x1000n, Off.efer); // KVM sets EFER.SVME
  p.writeBigUInt64LE(0x40n, Off.cr4); // KVM sets CR4.MCE
  p.writeBigUInt64LE(BigInt(r.cr0), Off.cr0);
  p.writeBigUInt64LE(0x400n, Off.dr7);
  p.writeBigUInt64LE(0xffff0ff0n, Off.dr6);
  p.writeBigUInt64LE(0x2n, Off.rflags);
  p.writeBigUInt64LE(BigInt(r.rip), Off.rip);
  p.writeBigUInt64LE(r.gPat, Off.gPat);
  p.writeBigUInt64LE(BigInt(r.rdx), Off.rdx);
  p.writeBigUInt64LE(r.sevFeatures, Off.sevFeatures);
  p.writeBigUInt64LE(0x1n, Off.xcr0);
  p.writeUInt32LE(r.mxcsr, Off.mxcsr);
  p.writeUInt16LE(r.fcw, Off.x87Fcw);
  return p;
}

/** The PAT reset value (APM vol. 2 A.3). */
const DEFAULT_PAT = 0x0007040600070406n;

/** The VMSA of a vCPU that starts in real mode at `eip` (OVMF's reset vector or AP reset block). */
export function resetVmsa(eip: number, vcpuSignature: number, sevFeatures: bigint, vmm: VmmType): Buffer {
  const real = (attrib: number): Segment => ({ selector: 0, attrib, limit: 0xffff, base: 0 });
  const ec2 = vmm === 'ec2';
  return page({
    segments: {
      es: real(0x93),
      cs: { selector: 0xf000, attrib: ec2 && eip === BSP_RESET_EIP ? 0x9a : 0x9b, limit: 0xffff, base: (eip & 0xffff0000) >>> 0 },
      ss: real(ec2 ? 0x92 : 0x93),
      ds: real(0x93),
      fs: real(0x93),
      gs: real(0x93),
      gdtr: real(0),
      ldtr: real(0x82),
      idtr: real(0),
      tr: real(ec2 ? 0x83 : 0x8b),
    },
    cr0: 0x10,
    rip: eip & 0xffff,
    gPat: vmm === 'gce' ? 0x00070106n : DEFAULT_PAT, // GCE's hypervisor writes its own PAT
    rdx: vmm === 'QEMU' ? vcpuSignature : 0x600,
    sevFeatures,
    mxcsr: vmm === 'QEMU' ? 0x1f80 : 0,
    fcw: vmm === 'QEMU' ? 0x37f : 0,
  });
}

/**
 * Coconut SVSM under QEMU: every vCPU starts in 32-bit protected mode at the SVSM's entry
 * with flat segments; SEV features are fixed to SNPActive (1).
 */
export function svsmVmsa(eip: number, vcpuSignature: number): Buffer {
  const flat = (selector: number): Segment => ({ selector, attrib: 0xc93, limit: 0xffffffff, base: 0 });
  return page({
    segments: {
      es: flat(16),
      cs: { selector: 8, attrib: 0xc9b, limit: 0xffffffff, base: 0 },
      ss: flat(16),
      ds: flat(16),
      fs: flat(16),
      gs: { selector: 0, attrib: 0x93, limit: 0xffff, base: 0 },
      gdtr: { selector: 0, attrib: 0, limit: 0xffff, base: 0 },
      ldtr: { selector: 0, attrib: 0x82, limit: 0xffff, base: 0 },
      idtr: { selector: 0, attrib: 0, limit: 0xffff, base: 0 },
      tr: { selector: 0, attrib: 0x8b, limit: 0xffff, base: 0 },
    },
    cr0: 0x11,
    rip: eip,
    gPat: DEFAULT_PAT,
    rdx: vcpuSignature,
    sevFeatures: 1n,
    mxcsr: 0x1f80,
    fcw: 0,
  });
}

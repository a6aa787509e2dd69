import { createHash } from 'node:crypto';

/**
 * The SEV-SNP launch digest (MEASUREMENT): every SNP_LAUNCH_UPDATE extends it with a SHA-384
 * over the PAGE_INFO structure (SEV-SNP ABI spec, "PAGE_INFO": the current digest, the page's
 * contents digest, length 0x70, page type, IMI flag, VMPL1..3 permissions, GPA). Pages that
 * are not measured by content (zero, unmeasured, secrets, CPUID) contribute 48 zero bytes.
 */
export const PAGE_SIZE = 4096;

const PAGE_INFO_LEN = 0x70;
const ZERO_DIGEST = Buffer.alloc(48);

/** SNP_LAUNCH_UPDATE page types (ABI spec, PAGE_TYPE). */
const PageType = { normal: 0x01, vmsa: 0x02, zero: 0x03, unmeasured: 0x04, secrets: 0x05, cpuid: 0x06 } as const;

/** The guest-physical address the PSP records for VMSA pages: (u64)-1, page-aligned, bits above 51 clear. */
const VMSA_GPA = 0xfffffffff000n;

function sha384(b: Uint8Array): Buffer {
  return createHash('sha384').update(b).digest();
}

export class LaunchDigest {
  private ld: Buffer;
  /** `seed`: a digest already computed over the firmware pages (sev-snp-measure's --snp-ovmf-hash). */
  constructor(seed?: Uint8Array) {
    this.ld = seed ? Buffer.from(seed) : Buffer.from(ZERO_DIGEST);
    if (this.ld.length !== 48) throw new Error('a launch digest seed is 48 bytes');
  }

  digest(): Buffer {
    return Buffer.from(this.ld);
  }

  private update(type: number, gpa: bigint, contents: Buffer): void {
    const info = Buffer.alloc(PAGE_INFO_LEN);
    this.ld.copy(info, 0);
    contents.copy(info, 48);
    info.writeUInt16LE(PAGE_INFO_LEN, 96);
    info.writeUInt8(type, 98);
    // is_imi (0x63), vmpl3/2/1 permissions (0x64..0x66), reserved (0x67): all zero
    info.writeBigUInt64LE(gpa, 104);
    this.ld = sha384(info);
  }

  normalPages(gpa: number, data: Uint8Array): void {
    for (let off = 0; off < data.length; off += PAGE_SIZE) this.update(PageType.normal, BigInt(gpa + off), sha384(data.subarray(off, off + PAGE_SIZE)));
  }

  vmsaPage(page: Uint8Array): void {
    this.update(PageType.vmsa, VMSA_GPA, sha384(page));
  }

  zeroPages(gpa: number, length: number): void {
    for (let off = 0; off < length; off += PAGE_SIZE) this.update(PageType.zero, BigInt(gpa + off), ZERO_DIGEST);
  }

  unmeasuredPages(gpa: number, length: number): void {
    for (let off = 0; off < length; off += PAGE_SIZE) this.update(PageType.unmeasured, BigInt(gpa + off), ZERO_DIGEST);
  }

  secretsPage(gpa: number): void {
    this.update(PageType.secrets, BigInt(gpa), ZERO_DIGEST);
  }

  cpuidPage(gpa: number): void {
    this.update(PageType.cpuid, BigInt(gpa), ZERO_DIGEST);
  }
}

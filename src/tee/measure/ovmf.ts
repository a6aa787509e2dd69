import { BuildtraceError } from '../../errors.js';
import { guidBytes } from './guid.js';
import { PAGE_SIZE } from './launch-digest.js';

/**
 * The parts of an OVMF (or Coconut SVSM) image the launch measurement depends on, read from
 * its bytes: the GUIDed footer table that ends 32 bytes before the image's end (edk2
 * OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm), the SEV metadata it points to (edk2
 * OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm: "ASEV", version 1, {gpa, size, type}
 * items), the SEV-ES AP reset address and the kernel hashes table address. Every malformed
 * field is an error naming it: a firmware we cannot read gives no measurement, never a guess.
 */

const FOUR_GIB = 0x1_0000_0000;
/** Far above any real firmware (OVMF is 2-4 MiB); bounds the pages a hostile image makes us hash. */
export const MAX_FIRMWARE_BYTES = 64 << 20;
/** Real metadata names about 100 KiB; a hostile image could name 4 GiB (a million page hashes). */
const MAX_METADATA_BYTES = 256 << 20;

const FOOTER_TABLE_GUID = guidBytes('96b582de-1fb2-45f7-baea-a366c55a082d');
const SEV_HASH_TABLE_RV_GUID = '7255371f-3a3b-4b04-927b-1da6efa8d454';
const SEV_ES_RESET_BLOCK_GUID = '00f771de-1a7e-4fcb-890e-68c77e2fb44e';
const SEV_METADATA_GUID = 'dc886566-984a-4798-a75e-5585a7bf67cc';
const SVSM_INFO_GUID = 'a789a612-0597-4c4b-a49f-cbb1fe9d1ddd';

/** OVMF SEV metadata section types (OvmfSevMetadata.asm). */
export const SectionType = { snpSecMem: 1, snpSecrets: 2, cpuid: 3, svsmCaa: 4, snpKernelHashes: 0x10 } as const;
const KNOWN_TYPES = new Set<number>(Object.values(SectionType));

interface MetadataSection {
  readonly gpa: number;
  readonly size: number;
  readonly type: number;
}

export interface FirmwareImage {
  readonly data: Buffer;
  /** Guest-physical address of the first byte: the image ends at `endAt` (4 GiB for OVMF). */
  readonly gpa: number;
  /** Footer table entries by GUID (their data, without the 18-byte entry header). */
  readonly table: ReadonlyMap<string, Buffer>;
  readonly sections: readonly MetadataSection[];
}

const ENTRY_HEADER = 18; // u16 size + 16-byte GUID

function bad(subject: string, msg: string): never {
  throw new BuildtraceError('FIRMWARE_INVALID', `${subject}: ${msg}`, { subject });
}

const GUID_STRINGS = [SEV_HASH_TABLE_RV_GUID, SEV_ES_RESET_BLOCK_GUID, SEV_METADATA_GUID, SVSM_INFO_GUID];

function footerTable(data: Buffer, subject: string): Map<string, Buffer> {
  const footerAt = data.length - 32 - ENTRY_HEADER;
  if (footerAt < 0) bad(subject, `${data.length} bytes is too short to hold an OVMF footer table`);
  if (!data.subarray(footerAt + 2, footerAt + ENTRY_HEADER).equals(FOOTER_TABLE_GUID))
    bad(subject, 'no OVMF GUIDed footer table (GUID 96b582de-1fb2-45f7-baea-a366c55a082d) 50 bytes before the end: not an SEV-capable OVMF/SVSM image');
  const tableSize = data.readUInt16LE(footerAt) - ENTRY_HEADER;
  if (tableSize < 0) bad(subject, `footer table size ${tableSize + ENTRY_HEADER} is smaller than its own header`);
  if (tableSize > footerAt) bad(subject, `footer table size ${tableSize + ENTRY_HEADER} runs past the start of the image`);
  const known = new Map(GUID_STRINGS.map((g) => [guidBytes(g).toString('hex'), g]));
  const out = new Map<string, Buffer>();
  // entries are read backwards: each one's size and GUID sit at its end
  let end = footerAt;
  const start = footerAt - tableSize;
  while (end - start >= ENTRY_HEADER) {
    const size = data.readUInt16LE(end - ENTRY_HEADER);
    const guid = data.subarray(end - ENTRY_HEADER + 2, end).toString('hex');
    if (size < ENTRY_HEADER) bad(subject, `footer table entry ${guid} has size ${size}, less than its 18-byte header`);
    if (size > end - start) bad(subject, `footer table entry ${guid} has size ${size}, more than the ${end - start} bytes left in the table`);
    const name = known.get(guid) ?? guid;
    if (out.has(name)) bad(subject, `footer table has two entries with GUID ${name}`);
    out.set(name, Buffer.from(data.subarray(end - size, end - ENTRY_HEADER)));
    end -= size;
  }
  return out;
}

function u32Entry(table: ReadonlyMap<string, Buffer>, guid: string, what: string, subject: string): number | undefined {
  const e = table.get(guid);
  if (e === undefined) return undefined;
  if (e.length < 4) bad(subject, `footer table entry ${what} (${guid}) holds ${e.length} bytes, fewer than its 4-byte address`);
  return e.readUInt32LE(0);
}

function metadata(data: Buffer, table: ReadonlyMap<string, Buffer>, subject: string): MetadataSection[] {
  const offsetFromEnd = u32Entry(table, SEV_METADATA_GUID, 'SEV metadata', subject);
  if (offsetFromEnd === undefined) return [];
  const at = data.length - offsetFromEnd;
  if (offsetFromEnd > data.length || at + 16 > data.length)
    bad(subject, `SEV metadata offset ${offsetFromEnd} from the end does not leave room for its 16-byte header in ${data.length} bytes`);
  if (data.toString('latin1', at, at + 4) !== 'ASEV')
    bad(subject, `SEV metadata at offset ${at} has signature ${JSON.stringify(data.toString('latin1', at, at + 4))}, not "ASEV"`);
  const size = data.readUInt32LE(at + 4);
  const version = data.readUInt32LE(at + 8);
  const count = data.readUInt32LE(at + 12);
  if (version !== 1) bad(subject, `SEV metadata version ${version} (only version 1 is known)`);
  if (size < 16 || at + size > data.length) bad(subject, `SEV metadata size ${size} runs past the image or is smaller than its header`);
  if (count * 12 > size - 16) bad(subject, `SEV metadata lists ${count} sections, but its ${size} bytes hold at most ${Math.floor((size - 16) / 12)}`);
  const out: MetadataSection[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const o = at + 16 + i * 12;
    const s = { gpa: data.readUInt32LE(o), size: data.readUInt32LE(o + 4), type: data.readUInt32LE(o + 8) };
    const where = `SEV metadata section ${i} (gpa 0x${s.gpa.toString(16)}, size 0x${s.size.toString(16)}, type 0x${s.type.toString(16)})`;
    if (!KNOWN_TYPES.has(s.type)) bad(subject, `${where}: unknown section type`);
    if (s.gpa % PAGE_SIZE !== 0 || s.size % PAGE_SIZE !== 0 || s.size === 0) bad(subject, `${where}: address and size must be non-zero multiples of 4096`);
    if (s.gpa + s.size > FOUR_GIB) bad(subject, `${where}: ends beyond 4 GiB`);
    total += s.size;
    if (total > MAX_METADATA_BYTES) bad(subject, `${where}: the SEV metadata sections cover more than ${MAX_METADATA_BYTES} bytes`);
    if (s.type === SectionType.snpKernelHashes && s.size !== PAGE_SIZE) bad(subject, `${where}: the kernel hashes section must be exactly one page`);
    out.push(s);
  }
  return out;
}

/** Parses an OVMF or SVSM image that ends at guest-physical `endAt` (QEMU maps OVMF below 4 GiB). */
export function parseFirmware(bytes: Uint8Array, subject: string, endAt: number = FOUR_GIB): FirmwareImage {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (data.length === 0) bad(subject, 'the firmware image is empty');
  if (data.length > MAX_FIRMWARE_BYTES) bad(subject, `${data.length} bytes is more than ${MAX_FIRMWARE_BYTES} (no real firmware image is this big)`);
  if (data.length % PAGE_SIZE !== 0) bad(subject, `${data.length} bytes is not a whole number of 4096-byte pages`);
  if (data.length > endAt) bad(subject, `${data.length} bytes do not fit below guest address 0x${endAt.toString(16)}`);
  const table = footerTable(data, subject);
  return { data, gpa: endAt - data.length, table, sections: metadata(data, table, subject) };
}

/** Where the BSP's APs start (the SEV-ES reset block), needed for every VMSA after the first. */
export function apResetAddress(fw: FirmwareImage, subject: string): number {
  const eip = u32Entry(fw.table, SEV_ES_RESET_BLOCK_GUID, 'SEV-ES reset block', subject);
  if (eip === undefined || eip === 0)
    bad(subject, `no SEV-ES reset block (${SEV_ES_RESET_BLOCK_GUID}) in the footer table: not an SEV-ES/SNP-capable firmware`);
  return eip;
}

/** Coconut SVSM: its entry point, an offset from the SVSM image's start (SVSM_INFO). */
export function svsmEntry(fw: FirmwareImage, subject: string): number {
  const off = u32Entry(fw.table, SVSM_INFO_GUID, 'SVSM info', subject);
  if (off === undefined) bad(subject, `no SVSM info entry (${SVSM_INFO_GUID}) in the footer table: not a Coconut SVSM image`);
  return fw.gpa + off;
}

/** The guest address of QEMU's kernel hashes table (SEV_HASH_TABLE_RV), if the firmware has one. */
export function hashesTableAddress(fw: FirmwareImage, subject: string): number | undefined {
  const gpa = u32Entry(fw.table, SEV_HASH_TABLE_RV_GUID, 'SEV hash table', subject);
  return gpa === 0 ? undefined : gpa;
}

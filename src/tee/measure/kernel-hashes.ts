import { createHash } from 'node:crypto';
import { guidBytes } from './guid.js';
import { PAGE_SIZE } from './launch-digest.js';

/**
 * QEMU's SEV hashes table for measured direct boot (QEMU target/i386/sev.c, "SevHashTable"):
 * a GUIDed header and three GUIDed SHA-256 entries, command line, initrd, kernel, padded to
 * 16 bytes. OVMF compares the files QEMU hands it against this table, and the table is part
 * of the launch measurement, so the measurement pins kernel, initrd and command line.
 */
const TABLE_GUID = guidBytes('9438d606-4f22-4cc9-b479-a793d411fd21');
const KERNEL_GUID = guidBytes('4de79437-abd2-427f-b835-d5b172d2045b');
const INITRD_GUID = guidBytes('44baf731-3a2f-4bd7-9af1-41e29169781d');
const CMDLINE_GUID = guidBytes('97d02dd8-bd20-4c94-aa78-e7714d36ab2a');

const ENTRY_LEN = 16 + 2 + 32;
const TABLE_LEN = 16 + 2 + 3 * ENTRY_LEN;
export const PADDED_TABLE_LEN = (TABLE_LEN + 15) & ~15;

export interface DirectBoot {
  readonly kernel: Uint8Array;
  /** Absent: QEMU hashes the empty string. */
  readonly initrd?: Uint8Array;
  /** The -append string; QEMU hashes it with its terminating NUL (absent: just the NUL). */
  readonly append?: string;
}

function entry(guid: Buffer, data: Uint8Array): Buffer {
  const e = Buffer.alloc(ENTRY_LEN);
  guid.copy(e, 0);
  e.writeUInt16LE(ENTRY_LEN, 16);
  createHash('sha256').update(data).digest().copy(e, 18);
  return e;
}

function hashesTable(boot: DirectBoot): Buffer {
  const head = Buffer.alloc(18);
  TABLE_GUID.copy(head, 0);
  head.writeUInt16LE(TABLE_LEN, 16);
  const cmdline = Buffer.concat([Buffer.from(boot.append ?? '', 'utf8'), Buffer.alloc(1)]);
  const table = Buffer.concat([head, entry(CMDLINE_GUID, cmdline), entry(INITRD_GUID, boot.initrd ?? new Uint8Array()), entry(KERNEL_GUID, boot.kernel)]);
  return Buffer.concat([table, Buffer.alloc(PADDED_TABLE_LEN - TABLE_LEN)]);
}

/** The page QEMU loads: the table at its offset inside the page, zeros around it. */
export function hashesPage(boot: DirectBoot, offsetInPage: number): Buffer {
  const page = Buffer.alloc(PAGE_SIZE);
  hashesTable(boot).copy(page, offsetInPage);
  return page;
}

import { blake3 } from '@noble/hashes/blake3.js';

/**
 * snix castore (snix/castore/protos/castore.proto, package snix.castore.v1): a file tree
 * as a Merkle DAG of protobuf messages with BLAKE3 digests, and the `Entry` laut records
 * per output (`laut_castoreEntry`, base64 of `Entry` with an empty name).
 *
 *   Directory      { repeated DirectoryEntry directories = 1; repeated FileEntry files = 2;
 *                    repeated SymlinkEntry symlinks = 3; }   each list sorted by name bytes
 *   DirectoryEntry { bytes name = 1; bytes digest = 2; uint64 size = 3; }
 *   FileEntry      { bytes name = 1; bytes digest = 2; uint64 size = 3; bool executable = 4; }
 *   SymlinkEntry   { bytes name = 1; bytes target = 2; }
 *   Entry          { oneof { DirectoryEntry directory = 1; FileEntry file = 2; SymlinkEntry symlink = 3; } }
 *
 * A directory's digest is BLAKE3 of its canonical encoding (fields in number order,
 * defaults omitted); a file's digest is BLAKE3 of its contents.
 *
 * Directory size: snix's ingestion uses `crate::Directory::size` (nodes/directory.rs since
 * August 2024): the number of entries PLUS, per entry, 1 (file, symlink) or 1 + size
 * (directory), i.e. every entry counts twice. The proto-level `Directory::size` counts once.
 * laut's entries were made by the former (a setup-hook output, `nix-support/setup-hook`,
 * has size 4 in laut's vectors, not 2), so we do the same: the entry must be byte-identical.
 * Pure: no I/O here (the tree walk is in src/store/castore-tree.ts).
 */

export type CastoreNode =
  | { readonly type: 'directory'; readonly digest: Uint8Array; readonly size: bigint }
  | { readonly type: 'file'; readonly digest: Uint8Array; readonly size: bigint; readonly executable: boolean }
  | { readonly type: 'symlink'; readonly target: Uint8Array };

export interface CastoreChild {
  readonly name: Uint8Array;
  readonly node: CastoreNode;
}

function varint(n: bigint | number): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** Appends field `num` (wire type 2, length-delimited) unless empty, as proto3 does. */
function bytesField(out: number[], num: number, b: Uint8Array): void {
  if (b.length === 0) return;
  out.push(...varint((num << 3) | 2), ...varint(b.length));
  for (const x of b) out.push(x);
}

function uintField(out: number[], num: number, v: bigint): void {
  if (v === 0n) return;
  out.push(...varint(num << 3), ...varint(v));
}

/** The node message (DirectoryEntry / FileEntry / SymlinkEntry) with its name. */
function encodeNode(name: Uint8Array, node: CastoreNode): number[] {
  const out: number[] = [];
  bytesField(out, 1, name);
  if (node.type === 'symlink') {
    bytesField(out, 2, node.target);
    return out;
  }
  bytesField(out, 2, node.digest);
  uintField(out, 3, node.size);
  if (node.type === 'file' && node.executable) out.push(4 << 3, 1);
  return out;
}

const FIELD_OF: Readonly<Record<CastoreNode['type'], number>> = { directory: 1, file: 2, symlink: 3 };

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Canonical protobuf encoding of a Directory with these children (any order given). */
export function encodeDirectory(children: readonly CastoreChild[]): Uint8Array {
  const sorted = [...children].sort((a, b) => compareBytes(a.name, b.name));
  const out: number[] = [];
  for (const type of ['directory', 'file', 'symlink'] as const) {
    for (const c of sorted) if (c.node.type === type) bytesField(out, FIELD_OF[type], Uint8Array.from(encodeNode(c.name, c.node)));
  }
  return Uint8Array.from(out);
}

/** snix's directory size (see above): every entry twice, plus each subdirectory's size. */
function directorySize(children: readonly CastoreChild[]): bigint {
  let n = BigInt(children.length);
  for (const c of children) n += c.node.type === 'directory' ? 1n + c.node.size : 1n;
  return n;
}

/** The DirectoryEntry node of a directory with these children. */
export function directoryNode(children: readonly CastoreChild[]): CastoreNode {
  return { type: 'directory', digest: blake3(encodeDirectory(children)), size: directorySize(children) };
}

export function fileNode(contents: Uint8Array, executable: boolean): CastoreNode {
  return { type: 'file', digest: blake3(contents), size: BigInt(contents.length), executable };
}

/** Entry{ <node> } with the given name (empty for a root, as laut writes it). */
export function encodeEntry(node: CastoreNode, name: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out: number[] = [];
  bytesField(out, FIELD_OF[node.type], Uint8Array.from(encodeNode(name, node)));
  // a node message that encodes to nothing (impossible: digests are 32 bytes) still needs its tag
  if (out.length === 0) out.push((FIELD_OF[node.type] << 3) | 2, 0);
  return Uint8Array.from(out);
}

/** laut_castoreEntry: standard base64 of the root Entry with an empty name. */
export function castoreEntryBase64(node: CastoreNode): string {
  return Buffer.from(encodeEntry(node)).toString('base64');
}

/** Protobuf fields of one message: [field number, varint or bytes]. */
function fields(b: Uint8Array): Array<[number, bigint | Uint8Array]> {
  let i = 0;
  const rd = (): bigint => {
    let r = 0n;
    let s = 0n;
    for (;;) {
      const c = b[i++];
      if (c === undefined) throw new Error('castore: truncated varint');
      r |= BigInt(c & 0x7f) << s;
      s += 7n;
      if (c < 0x80) return r;
    }
  };
  const out: Array<[number, bigint | Uint8Array]> = [];
  while (i < b.length) {
    const tag = Number(rd());
    if ((tag & 7) === 2) {
      const len = Number(rd());
      if (i + len > b.length) throw new Error('castore: truncated field');
      out.push([tag >> 3, b.subarray(i, i + len)]);
      i += len;
    } else if ((tag & 7) === 0) out.push([tag >> 3, rd()]);
    else throw new Error(`castore: unexpected wire type ${tag & 7}`);
  }
  return out;
}

/** Reads an Entry (for tests and diagnostics): the root node and its name. */
export function decodeEntry(bytes: Uint8Array): { name: Uint8Array; node: CastoreNode } {
  const top = fields(bytes);
  const [kind, body] = top[0] ?? [0, 0n];
  if (top.length !== 1 || !(body instanceof Uint8Array) || kind < 1 || kind > 3) throw new Error('castore: not an Entry');
  let name: Uint8Array = new Uint8Array(0);
  let bytes2: Uint8Array = new Uint8Array(0);
  let size = 0n;
  let executable = false;
  for (const [f, v] of fields(body)) {
    if (f === 1 && v instanceof Uint8Array) name = v;
    else if (f === 2 && v instanceof Uint8Array) bytes2 = v;
    else if (f === 3 && typeof v === 'bigint') size = v;
    else if (f === 4 && typeof v === 'bigint') executable = v !== 0n;
  }
  const node: CastoreNode =
    kind === 1
      ? { type: 'directory', digest: bytes2, size }
      : kind === 2
        ? { type: 'file', digest: bytes2, size, executable }
        : { type: 'symlink', target: bytes2 };
  return { name, node };
}

import { blake3 } from '@noble/hashes/blake3.js';

/*
 * Test-only, independent of src/nix/castore.ts: Nix archives read and written by hand, and
 * castore Entry bytes computed from a NAR with their own protobuf writer.
 */

/** A NAR of a lone symlink, byte by byte (Nix's archive format), for the NAR hash laut records. */
export function narOfSymlink(target: Uint8Array): Buffer {
  const str = (b: Uint8Array | string): Buffer => {
    const x = typeof b === 'string' ? Buffer.from(b) : Buffer.from(b);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(x.length));
    return Buffer.concat([len, x, Buffer.alloc((8 - (x.length % 8)) % 8)]);
  };
  return Buffer.concat(['nix-archive-1', '(', 'type', 'symlink', 'target'].map(str).concat([str(target), str(')')]));
}

/** An independent reading of a NAR into castore nodes (own protobuf writer), to check the lstat walk. */
export function castoreFromNar(nar: Buffer): Uint8Array {
  let at = 0;
  const str = (): Buffer => {
    const n = Number(nar.readBigUInt64LE(at));
    const s = nar.subarray(at + 8, at + 8 + n);
    at += 8 + n + ((8 - (n % 8)) % 8);
    return s;
  };
  const expect = (w: string): void => {
    const s = str().toString();
    if (s !== w) throw new Error(`NAR: expected ${w}, got ${s}`);
  };
  const vi = (n: bigint): number[] => {
    const o: number[] = [];
    while (n >= 0x80n) {
      o.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    o.push(Number(n));
    return o;
  };
  const fld = (num: number, b: Uint8Array): number[] => (b.length === 0 ? [] : [...vi(BigInt((num << 3) | 2)), ...vi(BigInt(b.length)), ...b]);
  type N = { kind: 1 | 2 | 3; msg: (name: Uint8Array) => number[]; size: bigint };
  const node = (): N => {
    expect('(');
    expect('type');
    const t = str().toString();
    if (t === 'symlink') {
      expect('target');
      const target = Uint8Array.from(str());
      expect(')');
      return { kind: 3, size: 0n, msg: (name) => [...fld(1, name), ...fld(2, target)] };
    }
    if (t === 'regular') {
      let tag = str().toString();
      let exec = false;
      if (tag === 'executable') {
        exec = true;
        str();
        tag = str().toString();
      }
      if (tag !== 'contents') throw new Error('NAR: contents expected');
      const c = str();
      expect(')');
      const d = blake3(c);
      return {
        kind: 2,
        size: 0n,
        msg: (name) => [...fld(1, name), ...fld(2, d), ...(c.length ? [0x18, ...vi(BigInt(c.length))] : []), ...(exec ? [0x20, 1] : [])],
      };
    }
    const kids: { name: Buffer; n: N }[] = [];
    for (;;) {
      const w = str().toString();
      if (w === ')') break;
      expect('(');
      expect('name');
      const name = Buffer.from(str());
      expect('node');
      kids.push({ name, n: node() });
      expect(')');
    }
    // NAR lists entries sorted by name, as castore wants each list
    const body: number[] = [];
    for (const k of [1, 2, 3]) for (const c of kids) if (c.n.kind === k) body.push(...fld(k, Uint8Array.from(c.n.msg(c.name))));
    const size = kids.reduce((a, c) => a + 1n + (c.n.kind === 1 ? 1n + c.n.size : 1n), 0n);
    const digest = blake3(Uint8Array.from(body));
    return { kind: 1, size, msg: (name) => [...fld(1, name), ...fld(2, digest), ...(size ? [0x18, ...vi(size)] : [])] };
  };
  expect('nix-archive-1');
  const root = node();
  return Uint8Array.from(fld(root.kind, Uint8Array.from(root.msg(new Uint8Array(0)))));
}

// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { blake3 } from '@noble/hashes/blake3.js';
import { castoreEntryBase64, decodeEntry, directoryNode, encodeDirectory, encodeEntry, fileNode, type CastoreChild } from '../src/nix/castore.js';
import { nix32Decode } from '../src/nix/nix32.js';
import { castoreNodeOfPath } from '../src/store/castore-tree.js';
import { parseLautContainer } from '../src/trace/laut-jws.js';
import { castoreFromNar, narOfSymlink } from './castore-nar.js';
import { ROOT, tempDir } from './helpers.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const utf8 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'utf8'));
/** BLAKE3 of the empty input (snix: EMPTY_BLOB_DIGEST, and the empty Directory's digest). */
const B3_EMPTY = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262';

describe('snix castore encoding', () => {
  test("snix's published fixtures: empty directory digest, blob digest, DIRECTORY_WITH_KEEP and DIRECTORY_COMPLICATED bytes", () => {
    // snix/castore/src/proto/tests/directory.rs `digest`: the empty Directory
    assert.equal(encodeDirectory([]).length, 0);
    assert.equal(Buffer.from(directoryNode([]).type === 'directory' ? (directoryNode([]) as { digest: Uint8Array }).digest : []).toString('hex'), B3_EMPTY);
    // snix/store/README.md: BlobService.Put of "x86_64-linux" answers this digest
    assert.equal(
      Buffer.from((fileNode(utf8('x86_64-linux'), false) as { digest: Uint8Array }).digest).toString('base64'),
      'KOM3/IHEx7YfInAnlJpAElYezq0Sxn9fRz7xuClwNfA=',
    );
    // snix/castore/src/fixtures.rs DIRECTORY_WITH_KEEP: one empty, non-executable file ".keep",
    // encoded by hand from castore.proto: Directory.files(2){ name(1) ".keep", digest(2) b3("") }
    const keep: CastoreChild[] = [{ name: utf8('.keep'), node: fileNode(new Uint8Array(0), false) }];
    const keepBytes = Buffer.concat([hex('1229'), hex('0a05'), Buffer.from('.keep'), hex('1220'), hex(B3_EMPTY)]);
    assert.equal(Buffer.from(encodeDirectory(keep)).toString('hex'), keepBytes.toString('hex'));
    // DIRECTORY_COMPLICATED: keep/ (that directory), .keep, aa -> /nix/store/somewhereelse
    const keepNode = directoryNode(keep);
    const complicated: CastoreChild[] = [
      { name: utf8('keep'), node: keepNode },
      { name: utf8('.keep'), node: fileNode(new Uint8Array(0), false) },
      { name: utf8('aa'), node: { type: 'symlink', target: utf8('/nix/store/somewhereelse') } },
    ];
    const keepDigest = Buffer.from(blake3(keepBytes));
    const size = keepNode.type === 'directory' ? keepNode.size : -1n;
    const dirEntry = Buffer.concat([hex('0a04'), Buffer.from('keep'), hex('1220'), keepDigest, hex('18'), Buffer.from([Number(size)])]);
    const fileEntry = Buffer.concat([hex('0a05'), Buffer.from('.keep'), hex('1220'), hex(B3_EMPTY)]);
    const linkEntry = Buffer.concat([hex('0a02'), Buffer.from('aa'), hex('1218'), Buffer.from('/nix/store/somewhereelse')]);
    const want = Buffer.concat([
      hex('0a'),
      Buffer.from([dirEntry.length]),
      dirEntry,
      hex('12'),
      Buffer.from([fileEntry.length]),
      fileEntry,
      hex('1a'),
      Buffer.from([linkEntry.length]),
      linkEntry,
    ]);
    assert.equal(Buffer.from(encodeDirectory(complicated)).toString('hex'), want.toString('hex'));
    // the order of the input does not matter: each list is sorted by name bytes
    assert.deepEqual(encodeDirectory([...complicated].reverse()), encodeDirectory(complicated));
  });

  test('an executable file sets field 4; an Entry with an empty name omits field 1', () => {
    const f = fileNode(utf8('#!/bin/sh\n'), true);
    const e = Buffer.from(encodeEntry(f));
    assert.equal(e[0], 0x12); // Entry.file
    assert.equal(e[2], 0x12); // FileEntry.digest first: no name
    assert.equal(e.subarray(-2).toString('hex'), '2001');
    const back = decodeEntry(e);
    assert.equal(back.name.length, 0);
    assert.ok(back.node.type === 'file' && back.node.size === 10n && back.node.executable);
    assert.equal(Buffer.from((back.node as { digest: Uint8Array }).digest).toString('hex'), Buffer.from((f as { digest: Uint8Array }).digest).toString('hex'));
  });
});

interface VectorEntry {
  readonly file: string;
  readonly output: string;
  readonly path: string;
  readonly narHash: string;
  readonly entry: Buffer;
}

function vectorEntries(): VectorEntry[] {
  const dir = join(ROOT, 'test/vectors/laut/traces');
  const out: VectorEntry[] = [];
  for (const f of readdirSync(dir).sort()) {
    for (const s of parseLautContainer(readFileSync(join(dir, f), 'utf8'), f) ?? []) {
      const p = JSON.parse(Buffer.from(s.split('.')[1] as string, 'base64url').toString()) as {
        out: { 'castore-entry': Record<string, string>; nix: Record<string, { path: string; hash: string }> };
      };
      for (const [o, e] of Object.entries(p.out['castore-entry'])) {
        const n = p.out.nix[o];
        if (n) out.push({ file: f, output: o, path: n.path, narHash: n.hash, entry: Buffer.from(e, 'base64url') });
      }
    }
  }
  return out;
}

describe("castore entries against laut's vectors", () => {
  const entries = vectorEntries();

  test("every symlink output in the vectors: our walk of a real symlink gives laut's entry, and its NAR hash is laut's out.nix hash", async () => {
    const dir = tempDir('castore-link-');
    const links = entries.filter((e) => e.entry[0] === 0x1a);
    assert.ok(links.length >= 10, `${links.length} symlink entries`);
    for (const [i, e] of links.entries()) {
      const target = decodeEntry(e.entry).node;
      assert.equal(target.type, 'symlink');
      const p = join(dir, `l${i}`);
      symlinkSync(Buffer.from((target as { target: Uint8Array }).target).toString('utf8'), p);
      const ours = await castoreNodeOfPath(p);
      assert.equal(castoreEntryBase64(ours), e.entry.toString('base64'), `${e.file} ${e.output}`);
      // laut's `hash` is the NAR SHA-256 in Nix32 with a sha256: prefix
      const nar = createHash('sha256')
        .update(narOfSymlink((target as { target: Uint8Array }).target))
        .digest();
      assert.equal(nar.toString('hex'), Buffer.from(nix32Decode(e.narHash.replace(/^sha256:/, ''), 32)).toString('hex'), `${e.file} ${e.output}`);
    }
  });

  test("directory sizes follow snix's ingestion (each entry twice): setup-hook, two-file and info outputs match laut's", async () => {
    const size = (e: Buffer): bigint => {
      const n = decodeEntry(e).node;
      return n.type === 'directory' ? n.size : -1n;
    };
    const byName = (re: RegExp): VectorEntry => entries.find((e) => re.test(e.path) && e.entry[0] === 0x0a) as VectorEntry;
    const dir = tempDir('castore-shape-');
    // makeSetupHook: $out/nix-support/setup-hook
    mkdirSync(join(dir, 'hook/nix-support'), { recursive: true });
    writeFileSync(join(dir, 'hook/nix-support/setup-hook'), 'x');
    // gnu-config: $out/config.guess, $out/config.sub
    mkdirSync(join(dir, 'gnu'));
    writeFileSync(join(dir, 'gnu/config.guess'), 'a');
    writeFileSync(join(dir, 'gnu/config.sub'), 'b');
    // an info output: $out/share/info/<one file>
    mkdirSync(join(dir, 'info/share/info'), { recursive: true });
    writeFileSync(join(dir, 'info/share/info/bash.info'), 'c');
    for (const [sub, re] of [
      ['hook', /-update-autotools-gnu-config-scripts-hook$/],
      ['gnu', /-gnu-config-2024-01-01$/],
      ['info', /-bash-5.2p37-info$/],
    ] as const) {
      const v = byName(re);
      assert.ok(v, `vector for ${re}`);
      const ours = await castoreNodeOfPath(join(dir, sub));
      assert.equal(ours.type === 'directory' ? ours.size : -1n, size(v.entry), `${sub} vs ${v.path}`);
    }
  });
});

describe('the lstat walk agrees with an independent NAR-based computation', () => {
  test('a tree with nested directories, executable, empty and non-UTF-8-named files and symlinks', async () => {
    const dir = tempDir('castore-tree-');
    const root = join(dir, 'out');
    mkdirSync(join(root, 'bin'), { recursive: true });
    mkdirSync(join(root, 'share/doc/empty-dir'), { recursive: true });
    writeFileSync(join(root, 'bin/run'), '#!/bin/sh\necho hi\n');
    chmodSync(join(root, 'bin/run'), 0o755);
    writeFileSync(join(root, 'share/doc/empty'), '');
    writeFileSync(join(root, 'share/big'), Buffer.alloc(3 << 20, 7));
    writeFileSync(Buffer.concat([Buffer.from(join(root, 'share/')), Buffer.from([0xff, 0x41])]), 'latin');
    symlinkSync('../bin/run', join(root, 'share/link'));
    symlinkSync('/nix/store/dangling', join(root, 'dangling'));
    const { execFileSync } = await import('node:child_process');
    const nar = execFileSync('nix-store', ['--dump', root], { maxBuffer: 64 << 20 });
    const ours = await castoreNodeOfPath(root);
    assert.equal(Buffer.from(encodeEntry(ours)).toString('hex'), Buffer.from(castoreFromNar(nar)).toString('hex'));
    // a single file and a single symlink as roots
    for (const p of [join(root, 'bin/run'), join(root, 'share/link')]) {
      const n = execFileSync('nix-store', ['--dump', p]);
      assert.equal(Buffer.from(encodeEntry(await castoreNodeOfPath(p))).toString('hex'), Buffer.from(castoreFromNar(n)).toString('hex'), p);
    }
  });
});

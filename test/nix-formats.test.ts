// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseDerivation, serializeDerivation } from '../src/nix/aterm.js';
import { derivationKind, derivationName, parseOutputHashAlgo } from '../src/nix/derivation.js';
import { formatHash, parseHash, sha256Hex } from '../src/nix/hash.js';
import { DrvHashCache } from '../src/nix/hash-modulo.js';
import { formatPublicKey, parseSecretKey, signFingerprint, verifyFingerprintSig, parsePublicKey } from '../src/nix/nix-key.js';
import { parseNarInfo } from '../src/nix/narinfo.js';
import { nix32Decode, nix32Encode } from '../src/nix/nix32.js';
import { derivationStorePath } from '../src/nix/resolve.js';
import { makeFixedOutputPath, makeOutputPath, makeTextPath, outputPathName, parseStorePath, printStorePath, hashPlaceholder } from '../src/nix/store-path.js';
import { FIXTURES, must, nixEnv, nixHashConvert, nixKeyPair, pathInfo, salt, sha256HexOf, tempDir } from './helpers.js';

const env = nixEnv();

test('Nix32: published vectors', () => {
  // sha256("") and sha256("abc") as Nix prints them (nix hash to-base32)
  assert.equal(nix32Encode(Buffer.from(sha256Hex(''), 'hex')), '0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73');
  assert.equal(nix32Encode(new Uint8Array(0)), '');
  assert.deepEqual(nix32Decode('0000000000000000000000000000000000000000000000000000', 32), new Uint8Array(32));
  assert.throws(() => nix32Decode('e'.repeat(52), 32), { code: 'NIX32_INVALID' });
});

test('Nix32 and hash encodings agree with nix hash convert (to-base32/to-sri before 2.19)', async () => {
  const hexes = Array.from({ length: 6 }, () => randomBytes(32).toString('hex'));
  const hexes1 = Array.from({ length: 3 }, () => randomBytes(20).toString('hex'));
  const b32 = await nixHashConvert('nix32', 'sha256', hexes);
  const b32s1 = await nixHashConvert('nix32', 'sha1', hexes1);
  const sri = await nixHashConvert('sri', 'sha256', hexes);
  hexes.forEach((h, i) => {
    const hash = parseHash(`sha256:${h}`);
    assert.equal(formatHash(hash, 'nix32', false), b32[i]);
    assert.equal(formatHash(hash, 'sri'), sri[i]);
    assert.equal(formatHash(parseHash(`sha256:${b32[i]}`), 'base16', false), h);
    assert.equal(formatHash(parseHash(sri[i] as string), 'base16', false), h);
  });
  hexes1.forEach((h, i) => {
    assert.equal(nix32Encode(Buffer.from(h, 'hex')), b32s1[i]);
  });
});

test('hash parsing rejects wrong lengths, algorithms and alphabets', () => {
  assert.throws(() => parseHash('sha256:abc'), { code: 'HASH_INVALID' });
  assert.throws(() => parseHash(`sha3:${'a'.repeat(64)}`), { code: 'HASH_INVALID' });
  assert.throws(() => parseHash('a'.repeat(64)), { code: 'HASH_INVALID' });
  assert.throws(() => parseHash('sha256-AAAA'), { code: 'HASH_INVALID' });
  assert.equal(parseHash('a'.repeat(64), 'sha256').algo, 'sha256');
});

test('store paths: parsing refuses what Nix refuses', () => {
  const ok = '/nix/store/0mdqa9w1p6cmli6976v4wi0sw9r4p5pr-hello-2.12.1';
  assert.equal(printStorePath(parseStorePath(ok)), ok);
  for (const bad of [
    '/nix/store/0mdqa9w1p6cmli6976v4wi0sw9r4p5pr-hello/bin/sh',
    '/nix/store/../etc/passwd',
    '/nix/store/0mdqa9w1p6cmli6976v4wi0sw9r4p5pr-..',
    '/nix/store/0mdqa9w1p6cmli6976v4wi0sw9r4p5pr-.hidden',
    '/nix/store/0mdqa9w1p6cmli6976v4wi0sw9r4p5pe-hello', // 'e' is not Nix32
    '/nix/store/0mdqa9w1p6cmli6976v4wi0sw9r4p5p-hello',
    '/nix/store/0mdqa9w1p6cmli6976v4wi0sw9r4p5pr-he llo',
    '/nix/store/0mdqa9w1p6cmli6976v4wi0sw9r4p5pr-',
    '/tmp/0mdqa9w1p6cmli6976v4wi0sw9r4p5pr-hello',
    `/nix/store/0mdqa9w1p6cmli6976v4wi0sw9r4p5pr-${'a'.repeat(212)}`,
    '',
  ]) {
    assert.throws(() => parseStorePath(bad), { code: 'STORE_PATH_INVALID' }, bad);
  }
});

test('placeholders match Nix (builtins.placeholder)', async () => {
  const r = await must('nix-instantiate', ['--eval', '--strict', '--json', '-E', 'map builtins.placeholder [ "out" "dev" "bin" ]'], { env });
  assert.deepEqual(JSON.parse(r.stdout), ['out', 'dev', 'bin'].map(hashPlaceholder));
});

test('text, flat and recursive fixed-output store paths match Nix', async () => {
  const s = salt();
  const content = `hello ${s}\n`;
  const toFile = await must('nix-instantiate', ['--eval', '--json', '-E', `builtins.toFile "note-${s}" ${JSON.stringify(content)}`], { env });
  assert.equal(JSON.parse(toFile.stdout), printStorePath(makeTextPath(`note-${s}`, content, [])));

  const dir = tempDir();
  const file = join(dir, `blob-${s}`);
  writeFileSync(file, content);
  const flat = (await must('nix-store', ['--add-fixed', 'sha256', file], { env })).stdout.trim();
  assert.equal(flat, printStorePath(makeFixedOutputPath('flat', 'sha256', sha256HexOf(content), `blob-${s}`)));
  const rec = (await must('nix-store', ['--add', file], { env })).stdout.trim();
  const narHash = (await must('nix-store', ['--query', '--hash', rec], { env })).stdout.trim();
  assert.equal(rec, printStorePath(makeFixedOutputPath('recursive', 'sha256', formatHash(parseHash(narHash), 'base16', false), `blob-${s}`)));
});

test('every .drv Nix writes: byte-exact ATerm, same .drv path, same output paths', async () => {
  const s = salt();
  const fodHash = sha256HexOf(`fixed-${s}\n`);
  const inst = await must('nix-instantiate', [join(FIXTURES, 'scope.nix'), '--argstr', 'salt', s, '--argstr', 'fodHash', fodHash], { env });
  const roots = inst.stdout.trim().split('\n');
  const closure = (await must('nix-store', ['-qR', ...roots], { env })).stdout
    .trim()
    .split('\n')
    .filter((p) => p.endsWith('.drv'));
  assert.ok(closure.length >= 12, `expected the whole fixture closure, got ${closure.length}`);
  const load = (p: string) => parseDerivation(readFileSync(p, 'latin1'), p);
  const hashes = new DrvHashCache(load);
  const kinds = new Set<string>();
  for (const p of closure) {
    const text = readFileSync(p, 'latin1');
    const drv = load(p);
    assert.equal(serializeDerivation(drv), text, `${p}: serializer must reproduce Nix's bytes`);
    assert.equal(printStorePath(derivationStorePath(drv, text)), p, `${p}: computed .drv path`);
    const kind = derivationKind(drv);
    kinds.add(kind);
    const name = derivationName(drv);
    if (kind === 'ia') {
      const h = hashes.masked(drv);
      for (const [out, o] of drv.outputs) assert.equal(printStorePath(makeOutputPath(out, h.hashes.get(out) as string, name)), o.path, `${p}!${out}`);
    }
    if (kind === 'fixed') {
      const o = drv.outputs.get('out');
      assert.ok(o);
      const { method, algo } = parseOutputHashAlgo(o.hashAlgo);
      assert.ok(method === 'flat' || method === 'recursive');
      assert.equal(printStorePath(makeFixedOutputPath(method, algo, o.hash, outputPathName(name, 'out'))), o.path);
    }
  }
  for (const k of ['ia', 'fixed', 'floating', 'deferred']) assert.ok(kinds.has(k), `fixture closure has a ${k} derivation`);
  // the strange fixture really carries the escapes we care about
  const strange = closure.find((p) => p.endsWith('-strange.drv'));
  assert.ok(strange);
  const raw = readFileSync(strange, 'latin1');
  for (const esc of ['\\"', '\\\\', '\\t', '\\n', '\\r', '\u00c3\u00a9']) assert.ok(raw.includes(esc), `strange.drv contains ${JSON.stringify(esc)}`);
});

test('ATerm parser reports truncation and garbage as ATERM_INVALID', () => {
  const text = 'Derive([("out","/nix/store/0mdqa9w1p6cmli6976v4wi0sw9r4p5pr-x","","")],[],[],"x86_64-linux","/bin/sh",["-c","true"],[("name","x")])';
  assert.equal(serializeDerivation(parseDerivation(text)), text);
  for (let cut = 0; cut < text.length; cut += 7) assert.throws(() => parseDerivation(text.slice(0, cut)), { code: 'ATERM_INVALID' });
  assert.throws(() => parseDerivation(`${text}x`), { code: 'ATERM_INVALID' });
  assert.throws(() => parseDerivation(text.replace('[("name","x")]', '[("name","x"),("name","y")]')), { code: 'ATERM_INVALID' });
});

test('Nix keys: our public key and signatures equal nix key / nix store sign', async () => {
  const dir = tempDir();
  const keys = await nixKeyPair(dir, `sign-test-${salt()}`);
  const sk = parseSecretKey(readFileSync(keys.secretFile, 'utf8'));
  assert.equal(formatPublicKey(sk.publicKey), keys.publicKey);
  assert.throws(() => parseSecretKey(keys.publicKey), { code: 'KEY_INVALID' });
  assert.throws(() => parseSecretKey(`name:${Buffer.alloc(64, 1).toString('base64')}`), { code: 'KEY_INVALID' });

  const s = salt();
  const file = join(dir, `signed-${s}`);
  writeFileSync(file, `signed ${s}\n`);
  const path = (await must('nix-store', ['--add', file], { env })).stdout.trim();
  await must('nix', ['store', 'sign', '--key-file', keys.secretFile, path], { env });
  const info = (await pathInfo([path], ['--sigs'])).get(path);
  assert.ok(info?.signatures);
  // ValidPathInfo::fingerprint: 1;<path>;<sha256:nix32 NAR hash>;<NAR size>;<sorted references>
  const fp = `1;${path};${formatHash(parseHash(info.narHash), 'nix32')};${info.narSize};${[...info.references].sort().join(',')}`;
  const ours = signFingerprint(sk, fp);
  assert.ok(info.signatures.includes(ours), `nix store sign wrote ${info.signatures.join(', ')}, we computed ${ours}`);
  assert.ok(verifyFingerprintSig(parsePublicKey(keys.publicKey), fp, ours));
  assert.ok(!verifyFingerprintSig(parsePublicKey(keys.publicKey), `${fp.replace(';1;', ';2;')}x`, ours));

  // narinfo written by nix copy: the fields the last mile compares
  const cache = join(dir, 'cache');
  await must('nix', ['copy', '--to', `file://${cache}`, path], { env });
  const narinfoFile = readdirSync(cache).find((f) => f === `${parseStorePath(path).hashPart}.narinfo`);
  assert.ok(narinfoFile);
  const text = readFileSync(join(cache, narinfoFile), 'utf8');
  const ni = parseNarInfo(text);
  assert.equal(ni.storePath, path);
  assert.equal(formatHash(ni.narHash, 'sri'), formatHash(parseHash(info.narHash), 'sri'));
  assert.equal(ni.narSize, info.narSize);
  assert.deepEqual(
    ni.references,
    info.references.map((r) => r.slice('/nix/store/'.length)),
  );
  assert.ok(ni.sigs.includes(ours));
  assert.throws(() => parseNarInfo(text.replace(/NarSize: .*\n/, '')), { code: 'NARINFO_INVALID' });
});

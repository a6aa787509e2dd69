// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
/**
 * `trace-verify key to-pem | from-pem`: Nix public keys (and a Nix secret key file's public
 * half) to PEM SubjectPublicKeyInfo and back, checked against keys Nix itself made, OpenSSL's
 * reading of the PEM, and ssh-keygen's fingerprint of the same key (the SSH key hint).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { nixKeyPair, run, startDaemon, tempDir, VERIFY_CLI } from './helpers.js';

const verify = (args: readonly string[], input?: string) => run('node', [VERIFY_CLI, ...args], input === undefined ? {} : { input });
const which = async (cmd: string): Promise<boolean> => (await run('sh', ['-c', `command -v ${cmd}`])).code === 0;

describe('trace-verify key', () => {
  const dir = tempDir('buildtrace-key-');
  let keys: { secretFile: string; publicFile: string; publicKey: string }[] = [];
  before(async () => {
    keys = [await nixKeyPair(dir, 'builder-1'), await nixKeyPair(dir, 'cache.example.org-2')];
  });

  test('Nix -> PEM -> Nix gives the same key string, for keys Nix made', async () => {
    for (const k of keys) {
      const pem = await verify(['key', 'to-pem', k.publicFile]);
      assert.equal(pem.code, 0, pem.stderr);
      assert.match(pem.stdout, /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=]+\n-----END PUBLIC KEY-----\n$/);
      const pemFile = join(dir, `${k.publicKey.split(':')[0]}.pem`);
      writeFileSync(pemFile, pem.stdout);
      const name = k.publicKey.slice(0, k.publicKey.indexOf(':'));
      const back = await verify(['key', 'from-pem', pemFile, '--name', name]);
      assert.equal(back.code, 0, back.stderr);
      assert.equal(back.stdout.trim(), k.publicKey);
      // standard input, and the daemon's secret key file gives the same public half
      assert.equal((await verify(['key', 'to-pem', '-'], `${k.publicKey}\n`)).stdout, pem.stdout);
      assert.equal((await verify(['key', 'to-pem', k.secretFile])).stdout, pem.stdout);
      // from-pem under another name changes only the name
      assert.equal((await verify(['key', 'from-pem', pemFile, '--name', 'other-1'])).stdout.trim(), `other-1:${k.publicKey.split(':')[1]}`);
    }
  });

  test('OpenSSL reads the PEM as the same Ed25519 key', async (t) => {
    if (!(await which('openssl'))) return t.skip('openssl not installed');
    const k = keys[0];
    assert.ok(k);
    const pemFile = join(dir, 'openssl.pem');
    writeFileSync(pemFile, (await verify(['key', 'to-pem', k.publicFile])).stdout);
    const der = await run('openssl', ['pkey', '-pubin', '-in', pemFile, '-outform', 'DER']);
    assert.equal(der.code, 0, der.stderr);
    const raw = await run('sh', ['-c', `openssl pkey -pubin -in '${pemFile}' -outform DER | tail -c 32 | base64`]);
    assert.equal(raw.stdout.trim(), k.publicKey.split(':')[1]);
  });

  test('--json gives both key hints; the SSH fingerprint is what ssh-keygen computes', async (t) => {
    const k = keys[1];
    assert.ok(k);
    const r = await verify(['key', 'to-pem', k.publicFile, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { name: string; publicKey: string; spkiSha256: string; sshFingerprint: string };
    assert.equal(j.publicKey, k.publicKey);
    assert.match(j.spkiSha256, /^[0-9a-f]{64}$/);
    assert.match(j.sshFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    if (!(await which('ssh-keygen'))) return t.skip('ssh-keygen not installed');
    // an OpenSSH public key line from the raw key, built with the shell's own tools
    const raw = Buffer.from(k.publicKey.split(':')[1] ?? '', 'base64');
    const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), raw]);
    const sshFile = join(dir, 'key.ssh.pub');
    writeFileSync(sshFile, `ssh-ed25519 ${blob.toString('base64')} test\n`);
    const fp = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', sshFile]);
    assert.equal(fp.code, 0, fp.stderr);
    assert.equal(fp.stdout.split(' ')[1], j.sshFingerprint);
  });

  test("the running daemon's key: status --json gives its public half, which converts like the key file", async () => {
    const D = await startDaemon({ keyName: 'status-key-1' });
    try {
      const s = JSON.parse((await D.cli(['status', '--json'])).stdout) as { key: { publicKey: string; sshFingerprint: string } };
      assert.equal(s.key.publicKey, D.keys.publicKey);
      const fromStatus = await verify(['key', 'to-pem', '-', '--json'], `${s.key.publicKey}\n`);
      const fromFile = await verify(['key', 'to-pem', D.keys.secretFile, '--json']);
      assert.equal(fromStatus.code, 0, fromStatus.stderr);
      assert.deepEqual(JSON.parse(fromStatus.stdout), JSON.parse(fromFile.stdout));
      assert.equal((JSON.parse(fromFile.stdout) as { sshFingerprint: string }).sshFingerprint, s.key.sshFingerprint);
    } finally {
      await D.stop();
    }
  });

  test('refused with exit 2 and a message: other key types, private keys, garbage, bad usage', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const ed = generateKeyPairSync('ed25519');
    const cases: [string, string, string[], RegExp][] = [
      ['rsa.pem', rsa.publicKey.export({ format: 'pem', type: 'spki' }).toString(), ['--name', 'x-1'], /rsa key, not Ed25519/],
      ['priv.pem', ed.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), ['--name', 'x-1'], /not one PEM "PUBLIC KEY"/],
      ['garbage.pem', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', ['--name', 'x-1'], /garbage\.pem/],
      ['noname.pem', ed.publicKey.export({ format: 'pem', type: 'spki' }).toString(), [], /needs --name/],
      ['colon.pem', ed.publicKey.export({ format: 'pem', type: 'spki' }).toString(), ['--name', 'a:b'], /no ":"/],
    ];
    for (const [file, text, extra, msg] of cases) {
      writeFileSync(join(dir, file), text);
      const r = await verify(['key', 'from-pem', join(dir, file), ...extra]);
      assert.equal(r.code, 2, `${file}: ${r.stderr}`);
      assert.match(r.stderr, msg, file);
      assert.equal(r.stdout, '', file);
    }
    const short = await verify(['key', 'to-pem', '-'], 'x-1:AAAA\n');
    assert.equal(short.code, 2);
    assert.match(short.stderr, /32 bytes, not 3/);
    const sub = await verify(['key', 'to-ssh', '-'], '');
    assert.equal(sub.code, 2);
    assert.match(sub.stderr, /unknown key subcommand to-ssh/);
  });
});

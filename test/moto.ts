// moto (python3-moto, Debian trixie and later): an S3 server that checks SigV4 signatures once
// authentication is on. Shared by the tests that need an S3 server which verifies what we sign.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

const probe = spawnSync('python3', ['-c', 'import moto, moto.server; print(moto.__version__)'], { encoding: 'utf8' });
export const MOTO_VERSION = probe.status === 0 ? probe.stdout.trim() : undefined;
export const MOTO_WHY = 'python3-moto (Debian trixie and later)';

/** moto checks If-Match on PutObject from 5.2 on (5.1's put_object reads only If-None-Match). */
export const motoChecksIfMatch = (v: string): boolean => {
  const [maj = 0, min = 0] = v.split('.').map(Number);
  return maj > 5 || (maj === 5 && min >= 2);
};

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** An Authorization header that only names the service (moto routes by it); not checked during set-up. */
export const routeOnly = (service: string): string =>
  `AWS4-HMAC-SHA256 Credential=AKIDSETUP/20260101/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=00`;

async function iam(base: string, params: Record<string, string>): Promise<string> {
  const res = await fetch(base, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: routeOnly('iam') },
    body: new URLSearchParams({ Version: '2010-05-08', ...params }).toString(),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `IAM ${params['Action']}: ${text}`);
  return text;
}

const tag = (xml: string, name: string): string => {
  const m = new RegExp(`<${name}>([^<]+)</${name}>`).exec(xml);
  assert.ok(m, `${name} in ${xml}`);
  return m[1] as string;
};

export interface Moto {
  readonly base: string;
  /** The access key of an IAM user allowed s3:*; every request after the set-up must be signed with it. */
  readonly key: { readonly id: string; readonly secret: string };
  stop(): Promise<void>;
}

/**
 * Starts moto on a free loopback port with authentication on after exactly the set-up requests
 * (a user, its policy, its access key, then one bucket each): from then on every signature is checked.
 */
export async function startMoto(buckets: readonly string[]): Promise<Moto> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    env: { ...process.env, INITIAL_NO_AUTH_ACTION_COUNT: String(3 + buckets.length), PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  };
  try {
    // up when it says where it listens (werkzeug's start-up line)
    await new Promise<void>((resolve, reject) => {
      let text = '';
      const onData = (c: Buffer): void => {
        text += c.toString('utf8');
        if (text.includes(`Running on ${base}`)) resolve();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => reject(new Error(`moto exited ${code}: ${text}`)));
    });
    await iam(base, { Action: 'CreateUser', UserName: 'publisher' });
    await iam(base, {
      Action: 'PutUserPolicy',
      UserName: 'publisher',
      PolicyName: 's3',
      PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] }),
    });
    const created = await iam(base, { Action: 'CreateAccessKey', UserName: 'publisher' });
    for (const b of buckets) {
      const res = await fetch(`${base}/${b}`, { method: 'PUT', headers: { authorization: routeOnly('s3') } });
      assert.equal(res.status, 200, await res.text());
    }
    return { base, key: { id: tag(created, 'AccessKeyId'), secret: tag(created, 'SecretAccessKey') }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

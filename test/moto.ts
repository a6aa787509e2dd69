/**
 * moto (python3-moto) as an S3 server that checks SigV4 signatures: one IAM user with full S3
 * access, its access key, and a bucket `cache`. Debian 12 has no moto; the chroots do.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

const probe = spawnSync('python3', ['-c', 'import moto, moto.server; print(moto.__version__)'], { encoding: 'utf8' });
export const MOTO_VERSION = probe.status === 0 ? probe.stdout.trim() : undefined;

/** The unauthenticated requests moto lets through before it checks every signature (the set-up below). */
const SETUP_ACTIONS = 4;

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
  /** http://127.0.0.1:PORT */
  readonly base: string;
  readonly key: { readonly id: string; readonly secret: string };
  stop(): Promise<void>;
}

/** Starts moto with authentication on after the set-up (user, policy, access key, bucket `cache`). */
export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    env: { ...process.env, INITIAL_NO_AUTH_ACTION_COUNT: String(SETUP_ACTIONS), PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  };
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
  // set-up, unauthenticated (exactly SETUP_ACTIONS requests): a user, its policy, its key, the bucket
  await iam(base, { Action: 'CreateUser', UserName: 'publisher' });
  await iam(base, {
    Action: 'PutUserPolicy',
    UserName: 'publisher',
    PolicyName: 's3',
    PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] }),
  });
  const created = await iam(base, { Action: 'CreateAccessKey', UserName: 'publisher' });
  const key = { id: tag(created, 'AccessKeyId'), secret: tag(created, 'SecretAccessKey') };
  const bucket = await fetch(`${base}/cache`, { method: 'PUT', headers: { authorization: routeOnly('s3') } });
  assert.equal(bucket.status, 200, await bucket.text());
  return { base, key, stop };
}

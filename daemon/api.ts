import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { BuildtraceError } from '../src/errors.js';

/** The daemon's control API: HTTP/1.1 over a unix socket, JSON bodies. */
export type Handler = (url: URL, method: string) => Promise<{ status: number; body: unknown }>;

function isAlive(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export async function listenOnSocket(socket: string, handler: Handler): Promise<Server> {
  mkdirSync(dirname(socket), { recursive: true, mode: 0o755 });
  if (await isAlive(socket)) {
    throw new BuildtraceError('DAEMON_ERROR', `another trace-daemon is already listening on ${socket}`, { subject: socket });
  }
  try {
    unlinkSync(socket); // stale socket from a killed daemon
  } catch {
    // none
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://trace-daemon');
    handler(url, req.method ?? 'GET')
      .then(({ status, body }) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      })
      .catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: (err as Error).message }));
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  chmodSync(socket, 0o660);
  return server;
}

/** Calls the daemon; DAEMON_NOT_RUNNING when nothing answers on the socket. */
export function callDaemon(socket: string, method: string, path: string, timeoutMs = 0): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown });
        } catch (err) {
          reject(new BuildtraceError('DAEMON_ERROR', `trace-daemon answered with something that is not JSON`, { cause: err }));
        }
      });
    });
    if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new BuildtraceError('DAEMON_NOT_RUNNING', `trace-daemon is not running (nothing listens on ${socket}); start it with: trace-daemon run --config FILE`, { subject: socket }));
      } else if (err.code === 'EACCES') {
        reject(new BuildtraceError('DAEMON_NOT_RUNNING', `no permission to talk to trace-daemon on ${socket}`, { subject: socket }));
      } else reject(new BuildtraceError('DAEMON_ERROR', `talking to trace-daemon on ${socket}: ${err.message}`, { subject: socket }));
    });
    req.end();
  });
}

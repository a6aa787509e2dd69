import { chmodSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmdirSync, unlinkSync, type Stats } from 'node:fs';
import { createConnection } from 'node:net';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { BuildtraceError, errorMessage } from '../src/errors.js';

/** The daemon's control API: HTTP/1.1 over a unix socket, JSON bodies. */
type Handler = (url: URL, method: string) => Promise<{ status: number; body: unknown }>;

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
  let st: Stats | undefined;
  try {
    st = lstatSync(socket);
  } catch {
    // nothing there yet
  }
  if (st !== undefined) {
    // Only a socket nobody answers on is ours to remove (left by a killed daemon).
    if (!st.isSocket()) {
      throw new BuildtraceError('DAEMON_CONFLICT', `socket ${socket} exists and is not a socket; refusing to remove it (check the "socket" setting)`, {
        subject: socket,
      });
    }
    if (await isAlive(socket)) {
      throw new BuildtraceError('DAEMON_CONFLICT', `another trace-daemon is already listening on ${socket}`, { subject: socket });
    }
    unlinkSync(socket);
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://trace-daemon');
    handler(url, req.method ?? 'GET')
      .then(({ status, body }) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      })
      .catch((err: unknown) => {
        // SQLite's errors say what but not where: name the database trouble as such
        const code = (err as { code?: unknown }).code;
        const sqlite = typeof code === 'string' && code.startsWith('SQLITE_');
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: sqlite ? `database error: ${errorMessage(err)} (${code})` : errorMessage(err) }));
      });
  });
  // The socket appears at its path with its final mode: it is bound inside a fresh directory
  // only we can enter (0700), narrowed to 0660 there, then renamed into place (no window in
  // which the umask decides who may connect).
  const priv = mkdtempSync(join(dirname(socket), '.trace-daemon-sock-'));
  const tmp = join(priv, 's');
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(tmp, () => resolve());
    });
    chmodSync(tmp, 0o660);
    renameSync(tmp, socket);
  } catch (err) {
    server.close();
    throw err;
  } finally {
    try {
      unlinkSync(tmp); // only still there when the rename failed
    } catch {
      // renamed into place
    }
    rmdirSync(priv);
  }
  // the server was bound under the temporary name: remove the real one when it closes
  server.once('close', () => {
    try {
      unlinkSync(socket);
    } catch {
      // already gone
    }
  });
  return server;
}

/** Calls the daemon; DAEMON_NOT_RUNNING when nothing answers on the socket. */
function callDaemon(socket: string, method: string, path: string, timeoutMs = 0): Promise<{ status: number; body: unknown }> {
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
        reject(
          new BuildtraceError(
            'DAEMON_NOT_RUNNING',
            `trace-daemon is not running (nothing listens on ${socket}); start it with: trace-daemon run --config FILE`,
            { subject: socket },
          ),
        );
      } else if (err.code === 'EACCES') {
        reject(new BuildtraceError('DAEMON_NOT_RUNNING', `no permission to talk to trace-daemon on ${socket}`, { subject: socket }));
      } else reject(new BuildtraceError('DAEMON_ERROR', `talking to trace-daemon on ${socket}: ${err.message}`, { subject: socket }));
    });
    req.end();
  });
}

/**
 * Calls the daemon and insists on an expected status: anything else (a failing database,
 * say) is an error naming what the daemon said, so no command prints an error body as data.
 */
export async function callDaemonOk(socket: string, method: string, path: string, ok: readonly number[] = [200]): Promise<{ status: number; body: unknown }> {
  const r = await callDaemon(socket, method, path);
  if (!ok.includes(r.status)) {
    const said = (r.body as { error?: unknown } | null)?.error;
    throw new BuildtraceError('DAEMON_ERROR', `trace-daemon failed (HTTP ${r.status}): ${typeof said === 'string' ? said : JSON.stringify(r.body)}`, {
      subject: socket,
    });
  }
  if (typeof r.body !== 'object' || r.body === null)
    throw new BuildtraceError('DAEMON_ERROR', `trace-daemon answered ${JSON.stringify(r.body)}, not an object`, { subject: socket });
  return r;
}

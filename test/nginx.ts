import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './helpers.js';

/**
 * nginx from Debian as a binary cache that accepts PUT (WebDAV), with conditional
 * writes (If-Match / If-None-Match -> 412, serialised per object across workers) and
 * ETags of the bytes served for the objects publishers append to (traces/, buildtrace/,
 * build-trace-v2/) added by Lua — the same configuration an operator can use (see
 * docs/nginx-cache.md). Two workers by default, as in production.
 * Fault switches: <dir>/fail503 makes every request 503; <dir>/fail503traces makes every PUT
 * under traces/ 503 (outputs and reads still succeed); <dir>/slow delays each by 0.3 s.
 */
export interface NginxCache {
  readonly url: string;
  readonly root: string;
  readonly dir: string;
  readonly port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  setFault(kind: 'fail503' | 'fail503traces' | 'slow', on: boolean): void;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export function nginxConfig(root: string, dir: string, port: number, conditional = true, workers = 2): string {
  // without the Lua lines: stock nginx WebDAV, which ignores If-Match / If-None-Match on PUT
  const lua = conditional
    ? {
        modules: `
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
`,
        http: `  lua_shared_dict buildtrace_locks 1m;
  init_by_lua_block {
    function buildtrace_sha1hex(data)
      return (ngx.sha1_bin(data):gsub(".", function(c) return string.format("%02x", c:byte()) end))
    end
    -- objects that are replaced by conditional writes: served from Lua, so that the ETag is
    -- computed from the very bytes sent (a second read could see a newer file than the one
    -- served, and a writer would then append to an old body under a current ETag)
    function buildtrace_versioned(uri)
      return uri:find("^/traces/") or uri:find("^/buildtrace/") or uri:find("^/build%-trace%-v2/")
    end
  }
`,
        location: `      access_by_lua_block {
        local f = io.open("${dir}/fail503", "r")
        if f then f:close(); return ngx.exit(503) end
        f = io.open("${dir}/fail503traces", "r")
        if f then
          f:close()
          if ngx.req.get_method() == "PUT" and ngx.var.uri:find("^/traces/") then return ngx.exit(503) end
        end
        f = io.open("${dir}/slow", "r")
        if f then f:close(); ngx.sleep(0.3) end
        local m = ngx.req.get_method()
        if m == "GET" or m == "HEAD" then
          if not buildtrace_versioned(ngx.var.uri) then return end
          local g = io.open(ngx.var.request_filename, "rb")
          if not g then return end
          local data = g:read("*a"); g:close()
          if not data then return end
          ngx.header["Content-Type"] = "application/octet-stream"
          ngx.header["Content-Length"] = #data
          ngx.header["ETag"] = '"' .. buildtrace_sha1hex(data) .. '"'
          if m == "GET" then ngx.print(data) end
          return ngx.exit(ngx.HTTP_OK)
        end
        if m ~= "PUT" then return end
        local im = ngx.var.http_if_match
        local inm = ngx.var.http_if_none_match
        if not im and not inm then return end
        -- read, compare and write under one lock per object, shared by all workers (the
        -- shared dict); the WebDAV PUT writes a temp file and renames it, the lock is
        -- released in the log phase, after the rename
        local locks = ngx.shared.buildtrace_locks
        if not locks:add(ngx.var.uri, true, 30) then return ngx.exit(409) end
        ngx.ctx.lock = ngx.var.uri
        local cur = nil
        local g = io.open(ngx.var.request_filename, "rb")
        if g then
          local data = g:read("*a"); g:close()
          cur = '"' .. buildtrace_sha1hex(data) .. '"'
        end
        if (inm == "*" and cur) or (im and im ~= cur) then
          locks:delete(ngx.var.uri); ngx.ctx.lock = nil
          return ngx.exit(412)
        end
      }
      log_by_lua_block {
        if ngx.ctx.lock then ngx.shared.buildtrace_locks:delete(ngx.ctx.lock) end
      }
`,
      }
    : { modules: '', http: '', location: '' };
  return `${lua.modules}user root;
worker_processes ${workers};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${lua.http}  server {
    listen 127.0.0.1:${port};
    root ${root};
    client_max_body_size 0;
    location / {
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
${lua.location}    }
  }
}
`;
}

/** `conditional: false`: stock WebDAV without the Lua precondition checks (for tests that need it). */
export async function startNginx(opts: { conditional?: boolean; workers?: number } = {}): Promise<NginxCache> {
  const conditional = opts.conditional ?? true;
  const workers = opts.workers ?? 2;
  const dir = tempDir('nginx-');
  const root = join(dir, 'cache');
  mkdirSync(root);
  let child: ChildProcess | undefined;
  let port = 0;
  const launch = async (): Promise<void> => {
    for (let attempt = 0; attempt < 20; attempt++) {
      // below Linux's ephemeral range (32768 and up): no client socket of a parallel run holds it
      if (port === 0 || attempt > 0) port = 20000 + Math.floor(Math.random() * 12000);
      if (await portOpen(port)) continue;
      writeFileSync(join(dir, 'nginx.conf'), nginxConfig(root, dir, port, conditional, workers));
      let err = '';
      child = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
      for (let i = 0; i < 100; i++) {
        // open, and still ours: a parallel run's nginx on the same port would answer while ours
        // exits with "Address already in use"
        if (await portOpen(port)) {
          await new Promise((r) => setTimeout(r, 200));
          if (child.exitCode === null) return;
        }
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      if (child.exitCode !== null && !/Address already in use/.test(err)) throw new Error(`nginx did not start: ${err}`);
    }
    throw new Error('nginx: no free port');
  };
  await launch();
  const fixedPort = port;
  const handle: NginxCache = {
    url: `http://127.0.0.1:${fixedPort}`,
    root,
    dir,
    port: fixedPort,
    async start() {
      port = fixedPort;
      writeFileSync(join(dir, 'nginx.conf'), nginxConfig(root, dir, fixedPort, conditional, workers));
      child = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
      for (let i = 0; i < 100 && !(await portOpen(fixedPort)); i++) await new Promise((r) => setTimeout(r, 50));
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const done = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGTERM');
      await done;
    },
    setFault(kind, on) {
      const f = join(dir, kind);
      if (on) writeFileSync(f, '1');
      else {
        try {
          unlinkSync(f);
        } catch {
          // already off
        }
      }
    },
  };
  return handle;
}

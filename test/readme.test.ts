// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
/**
 * README doc test: the README cannot drift from the programs it documents.
 *
 * Every fenced block of README.md is checked according to its language tag; a marker on the
 * line right before the fence (indentation allowed) changes that:
 *   <!-- doctest: skip REASON -->   not checked (a reason is required)
 *   <!-- doctest: run -->           run with `bash -euo pipefail` in a fresh temp dir whose PATH
 *                                   has trace-verify and trace-daemon (dist/) and Nix; must exit 0.
 *                                   Only for self-contained, fast blocks that write nothing outside
 *                                   their working directory.
 *   <!-- doctest: schema NAME -->   a json block, validated against schemas/NAME.schema.json
 * - `sh` blocks, and the `$ …` lines of untagged output samples: every command line (after `\`
 *   continuations, split at `&&`, `||`, ` | `, `;` outside brackets) is checked:
 *   trace-verify / trace-daemon: the subcommand and every `--flag` must be in that program's --help;
 *   `npm test`, `npm run X [-- flags]`: the script exists, and flags after `--` appear in the source
 *   of the dist/… program the script runs; `node dist/X.js`: src X.ts exists and its flags appear in
 *   it; `bash scripts/X`: the file exists; `nix SUB…`: `nix SUB… --help` exits 0 and names every
 *   flag. Any other program must be in ALLOWED_PROGRAMS. Placeholders: `<name>`, FILE, ….
 * - Inline code spans in prose and tables that start with `trace-verify `, `trace-daemon `,
 *   `npm run `, `node dist/` or `bash scripts/` are checked the same way (usage syntax such as
 *   `[--a X \| --b Y]` is fine).
 * - json blocks parse strictly (no duplicate keys); nix blocks: every `services.buildtrace` option
 *   they set (comments included) is declared in nixos-module/default.nix.
 * - Relative links resolve to an existing file and heading. A link to a page that is not written
 *   yet needs `<!-- doctest: pending docs/x.md -->` somewhere in the README (delete it when the
 *   page exists: a pending marker for an existing file fails).
 * - The quick start's two commands are exactly what CI runs (.ci/run, scripts/ci-suite.sh).
 * - The Commands table names every subcommand the programs' --help lists.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, test } from 'node:test';
import { parseStrictJson } from '../src/util/strict-json.js';
import { validateAgainst } from '../src/util/schema.js';
import { DAEMON_CLI, nixEnv, ROOT, run, tempDir, VERIFY_CLI } from './helpers.js';

const README = join(ROOT, 'README.md');
/** Programs README blocks may call that have no --help check of their own. */
const ALLOWED_PROGRAMS = new Set(['install', 'chmod', 'mkdir', 'cp', 'cat', 'echo', 'cosign', 'nix-build', 'nix-store', 'test', 'head']);
/** Inline code checked as a command (nix is not: prose names commands of other Nix versions). */
const INLINE_CHECKED = /^((trace-verify|trace-daemon|npm run|npm test)( |$)|node dist\/|bash scripts\/)/;
const OURS: Record<string, string> = { 'trace-verify': VERIFY_CLI, 'trace-daemon': DAEMON_CLI };

interface Block {
  readonly lang: string;
  readonly line: number;
  readonly body: string;
  readonly marker: { kind: string; arg: string } | undefined;
}

interface Doc {
  readonly blocks: Block[];
  /** Inline code spans outside fences, with their line numbers. */
  readonly spans: { text: string; line: number }[];
  readonly text: string;
}

const MARKER = /^\s*<!-- doctest: ([a-z]+)\s*(.*?)\s*-->\s*$/;

function parseReadme(text: string): Doc {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  const spans: { text: string; line: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i] ?? '';
    const fence = /^(\s*)```(\S*)\s*$/.exec(l);
    if (fence) {
      const indent = fence[1]?.length ?? 0;
      const body: string[] = [];
      let j = i + 1;
      while (j < lines.length && !/^\s*```\s*$/.test(lines[j] ?? '')) {
        body.push((lines[j] ?? '').slice(indent));
        j++;
      }
      assert.ok(j < lines.length, `README.md:${i + 1}: unclosed code fence`);
      let k = i - 1;
      while (k >= 0 && (lines[k] ?? '').trim() === '') k--;
      const m = MARKER.exec(lines[k] ?? '');
      blocks.push({ lang: fence[2] ?? '', line: i + 1, body: body.join('\n'), marker: m ? { kind: m[1] ?? '', arg: m[2] ?? '' } : undefined });
      i = j;
      continue;
    }
    // inline code may wrap: spans are read per paragraph (up to a blank line, a fence or a table row)
    if (l.trim() === '') continue;
    const start = i;
    const para = [l];
    while (i + 1 < lines.length && (lines[i + 1] ?? '').trim() !== '' && !/^\s*```/.test(lines[i + 1] ?? '') && !l.startsWith('|')) {
      if ((lines[i + 1] ?? '').startsWith('|')) break;
      i++;
      para.push(lines[i] ?? '');
    }
    const joined = para.join('\n');
    for (const m of joined.matchAll(/`([^`]+)`/g)) {
      const line = start + 1 + (joined.slice(0, m.index).match(/\n/g)?.length ?? 0);
      spans.push({ text: (m[1] ?? '').replaceAll('\\|', '|').replace(/\s*\n\s*/g, ' '), line });
    }
  }
  return { blocks, spans, text };
}

/** Split a shell line into commands at `&&`, `||`, ` | `, `;` outside brackets (usage syntax). */
function splitCommands(line: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i] ?? '';
    if (c === '[' || c === '(' || c === '{') depth++;
    if (c === ']' || c === ')' || c === '}') depth = Math.max(0, depth - 1);
    // a pipe is ` | ` (usage text such as FILE|- is one word)
    const pipe = c === '|' && (line[i + 1] === '|' || (line[i - 1] === ' ' && line[i + 1] === ' '));
    if (depth === 0 && (pipe || c === ';' || (c === '&' && line[i + 1] === '&'))) {
      out.push(cur);
      cur = '';
      if ((c === '&' || c === '|') && line[i + 1] === c) i++;
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

/** Words of one command, without redirections, comments, usage brackets or a `$ ` prompt. */
function words(command: string): string[] {
  const noComment = command.replace(/(^|\s)#\s.*$/, '');
  const raw = noComment
    .replace(/^\$\s+/, '')
    .split(/\s+/)
    .filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const w = raw[i] ?? '';
    if (/^(\d?>>?|<)$/.test(w)) {
      i++; // the redirection's target
      continue;
    }
    if (/^(\d?>|<)/.test(w) && !/^<[^>]*>$/.test(w)) continue; // 2>&1, >file
    const bare = w.replace(/^[[(]+|[\])]+$/g, '');
    if (bare !== '' && bare !== '...' && bare !== '…') out.push(bare);
  }
  return out;
}

const flagsOf = (ws: readonly string[]): string[] => ws.filter((w) => /^--[a-z]/.test(w)).map((w) => w.replace(/=.*$/, ''));
const mentions = (text: string, flag: string): boolean => new RegExp(`${flag}(?![a-z0-9-])`).test(text);

const helpCache = new Map<string, Promise<{ code: number; text: string }>>();
function helpOf(cmd: string, args: readonly string[]): Promise<{ code: number; text: string }> {
  const key = [cmd, ...args].join(' ');
  let p = helpCache.get(key);
  if (!p) {
    p = run(cmd, args, { env: nixEnv({}, { NIX_PAGER: 'cat', PAGER: 'cat' }) }).then((r) => ({ code: r.code, text: r.stdout + r.stderr }));
    helpCache.set(key, p);
  }
  return p;
}

/** Subcommands a program's --help lists in its Usage lines (`  trace-verify WORD …`). */
async function subcommandsOf(program: string): Promise<Set<string>> {
  const { text } = await helpOf('node', [OURS[program] ?? '', '--help']);
  const subs = new Set<string>();
  for (const m of text.matchAll(new RegExp(`^\\s+${program} ([a-z][a-z-]*)\\b`, 'gm'))) subs.add(m[1] ?? '');
  return subs;
}

/** Source file of a `dist/…js` program, or undefined. */
function sourceOf(distPath: string): string | undefined {
  const rel = distPath.replace(/^\.?\/?dist\//, '').replace(/\.js$/, '.ts');
  const p = join(ROOT, rel);
  return existsSync(p) ? p : undefined;
}

/** Problems with one command (empty: fine). `where` names its README line. */
async function checkCommand(command: string, where: string): Promise<string[]> {
  const ws = words(command);
  const prog = ws[0];
  if (prog === undefined) return [];
  const problems: string[] = [];
  const flags = flagsOf(ws);
  if (prog in OURS) {
    const { code, text } = await helpOf('node', [OURS[prog] ?? '', '--help']);
    if (code !== 0) return [`${where}: ${prog} --help exited ${code}`];
    const subs = await subcommandsOf(prog);
    const first = ws.slice(1).find((w) => !w.startsWith('-'));
    // trace-verify's main form takes a TARGET (a path or a placeholder); a plain word must be a subcommand
    const looksLikeSub = first !== undefined && /^[a-z][a-z-]*$/.test(first) && (prog === 'trace-daemon' || ws.indexOf(first) === 1);
    if (looksLikeSub && !subs.has(first)) problems.push(`${where}: \`${prog} ${first}\` is not a subcommand in ${prog} --help`);
    for (const f of flags) if (!mentions(text, f)) problems.push(`${where}: ${prog} --help does not know ${f} (in \`${command}\`)`);
    return problems;
  }
  if (prog === 'npm') {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const name = ws[1] === 'run' ? ws[2] : ws[1];
    if (name === 'ci') return [];
    if (name === undefined || !(name in scripts)) return [`${where}: npm script ${name} is not in package.json`];
    const dd = ws.indexOf('--');
    if (dd >= 0) {
      const prog2 = /node (\S+\.js)/.exec(scripts[name] ?? '')?.[1];
      const src = prog2 ? sourceOf(prog2) : undefined;
      if (!src) return [`${where}: npm run ${name} passes flags, but runs no dist/… program whose source I can find`];
      const s = readFileSync(src, 'utf8');
      for (const f of flagsOf(ws.slice(dd + 1))) if (!mentions(s, f) && !s.includes(`'${f.slice(2)}'`)) problems.push(`${where}: ${src} does not read ${f}`);
    }
    return problems;
  }
  if (prog === 'node') {
    const target = ws[1] ?? '';
    const src = sourceOf(target);
    if (!src) return [`${where}: no source for ${target}`];
    const s = readFileSync(src, 'utf8');
    for (const f of flags) if (!mentions(s, f) && !s.includes(`'${f.slice(2)}'`)) problems.push(`${where}: ${src} does not read ${f}`);
    return problems;
  }
  if (prog === 'bash' || prog === 'sh') {
    const script = ws[1] ?? '';
    return existsSync(join(ROOT, script)) ? [] : [`${where}: ${script} does not exist`];
  }
  if (prog === 'nix') {
    const sub: string[] = [];
    for (const w of ws.slice(1)) {
      if (!/^[a-z][a-z-]*$/.test(w) || sub.length === 2) break;
      sub.push(w);
    }
    const { code, text } = await helpOf('nix', [...sub, '--help']);
    if (code !== 0) return [`${where}: nix ${sub.join(' ')} --help exited ${code}`];
    for (const f of flags) if (!mentions(text, f)) problems.push(`${where}: nix ${sub.join(' ')} --help does not know ${f}`);
    return problems;
  }
  if (!ALLOWED_PROGRAMS.has(prog)) problems.push(`${where}: unknown program ${prog} (in \`${command}\`); add it to ALLOWED_PROGRAMS if it is meant`);
  return problems;
}

/** Command lines of a shell block: `\` continuations joined, comments and blanks dropped. */
function shellLines(body: string): string[] {
  return body
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replaceAll(' ', '-');
}

function headingsOf(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#+ (.*)$/gm)].map((m) => slug(m[1] ?? '')));
}

const doc = parseReadme(readFileSync(README, 'utf8'));

describe('README doc test', () => {
  test('every fenced block is checked or marked, and markers are well-formed', () => {
    assert.ok(doc.blocks.length >= 8, `only ${doc.blocks.length} fenced blocks found: the parser is broken`);
    for (const b of doc.blocks) {
      if (b.marker === undefined) continue;
      assert.ok(['skip', 'run', 'schema'].includes(b.marker.kind), `README.md:${b.line}: unknown doctest marker ${b.marker.kind}`);
      if (b.marker.kind === 'skip') assert.ok(b.marker.arg.length > 3, `README.md:${b.line}: a skip marker needs a reason`);
      if (b.marker.kind === 'schema') assert.equal(b.lang, 'json', `README.md:${b.line}: schema marker on a ${b.lang} block`);
    }
    const known = new Set(['sh', 'json', 'nix', '']);
    for (const b of doc.blocks)
      assert.ok(
        known.has(b.lang) || b.marker?.kind === 'skip',
        `README.md:${b.line}: no check for \`\`\`${b.lang} blocks (mark it skip with a reason, or extend this test)`,
      );
  });

  test('every command in sh blocks, output samples and inline code exists with its flags', async () => {
    const problems: string[] = [];
    let checked = 0;
    for (const b of doc.blocks) {
      if (b.marker?.kind === 'skip') continue;
      let lines: string[] = [];
      if (b.lang === 'sh') lines = shellLines(b.body);
      else if (b.lang === '') lines = b.body.split('\n').filter((l) => l.startsWith('$ '));
      for (const l of lines) {
        for (const c of splitCommands(l)) {
          problems.push(...(await checkCommand(c, `README.md:${b.line}`)));
          checked++;
        }
      }
    }
    for (const s of doc.spans) {
      if (!INLINE_CHECKED.test(s.text)) continue;
      for (const c of splitCommands(s.text)) problems.push(...(await checkCommand(c, `README.md:${s.line}`)));
      checked++;
    }
    assert.ok(checked >= 20, `only ${checked} commands checked: the extraction is broken`);
    assert.deepEqual(problems, []);
  });

  test('the checker itself refuses what it should (unknown flag, subcommand, script, program)', async () => {
    const bad = [
      'trace-verify bundles --no-such-flag X',
      'trace-daemon frobnicate',
      'npm run no-such-script',
      'node dist/bench/no-such-bench.js',
      'nix key generate-secret --no-such-nix-flag',
      'rm -rf /',
      'bash scripts/no-such.sh',
    ];
    for (const c of bad) assert.notDeepEqual(await checkCommand(c, 'self-test'), [], `the checker accepted \`${c}\``);
    assert.deepEqual(await checkCommand('trace-verify evidence --report F [--vcek F | --vlek F] --roots DIR', 'self-test'), []);
    assert.deepEqual(await checkCommand('nix key generate-secret --key-name a-1 > k.sec', 'self-test'), []);
  });

  test('json blocks parse strictly; marked ones validate against their schema', () => {
    let n = 0;
    for (const b of doc.blocks) {
      if (b.lang !== 'json' || b.marker?.kind === 'skip') continue;
      const v = parseStrictJson(b.body, `README.md:${b.line}`);
      if (b.marker?.kind === 'schema') validateAgainst(`${b.marker.arg}.schema.json`, v, `README.md:${b.line}`, 'CONFIG_INVALID');
      n++;
    }
    assert.ok(n >= 1, 'no json block checked');
  });

  test('nix blocks set only options the NixOS module declares', () => {
    const module = readFileSync(join(ROOT, 'nixos-module/default.nix'), 'utf8');
    let n = 0;
    for (const b of doc.blocks) {
      if (b.lang !== 'nix' || b.marker?.kind === 'skip') continue;
      const inner = /services\.buildtrace = \{([\s\S]*?)\n\s*\};/.exec(b.body)?.[1];
      assert.ok(inner, `README.md:${b.line}: no services.buildtrace = { … } in a nix block`);
      for (const m of inner.matchAll(/^\s*(?:#\s*)?([a-zA-Z][\w.]*)\s*=/gm)) {
        const last = (m[1] ?? '').split('.').pop() ?? '';
        assert.match(
          module,
          new RegExp(`\\b${last} = mk(Enable)?Option\\b`),
          `README.md:${b.line}: services.buildtrace.${m[1]} is not an option of nixos-module/default.nix`,
        );
        n++;
      }
    }
    assert.ok(n >= 3, 'no module option checked');
  });

  test('relative links resolve to files and headings; pending markers name missing pages', () => {
    const pending = new Set([...doc.text.matchAll(/<!-- doctest: pending (\S+) -->/g)].map((m) => m[1] ?? ''));
    for (const p of pending) assert.ok(!existsSync(join(ROOT, p)), `${p} exists now: delete its "doctest: pending" marker from README.md`);
    const files = [
      README,
      ...readdirSync(join(ROOT, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => join(ROOT, 'docs', f)),
    ];
    let n = 0;
    for (const f of files) {
      const text = readFileSync(f, 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = m[1] ?? '';
        if (/^[a-z]+:/.test(link)) continue;
        const [path = '', frag] = link.split('#');
        const target = path === '' ? f : normalize(join(dirname(f), path));
        const rel = target.slice(ROOT.length);
        n++;
        if (f === README && pending.has(rel)) continue;
        assert.ok(existsSync(target), `${f.slice(ROOT.length)}: link to ${link}: no such file`);
        if (frag) assert.ok(headingsOf(target).has(frag), `${f.slice(ROOT.length)}: link to ${link}: no such heading`);
      }
    }
    assert.ok(n >= 10, `only ${n} links checked`);
  });

  test('the quick start is what CI runs', () => {
    const qs = doc.blocks.find((b) => b.lang === 'sh' && b.body.includes('scripts/demo.sh'));
    assert.ok(qs, 'no quick start block');
    const cmds = shellLines(qs.body).map((l) => l.replace(/\s+#.*$/, ''));
    assert.deepEqual(cmds, ['bash scripts/setup.sh && bash scripts/demo.sh', 'npm test']);
    const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
    assert.match(ci, /bash scripts\/setup\.sh/);
    assert.match(ci, /:-npm test\}/);
    assert.match(readFileSync(join(ROOT, 'scripts/ci-suite.sh'), 'utf8'), /bash scripts\/setup\.sh && bash scripts\/demo\.sh/);
  });

  test('the Commands table names every subcommand the programs list', async () => {
    for (const prog of Object.keys(OURS)) {
      const subs = await subcommandsOf(prog);
      assert.ok(subs.size >= 2, `${prog}: no subcommands parsed from --help`);
      for (const s of subs)
        assert.ok(
          doc.spans.some((x) => x.text.startsWith(`${prog} ${s}`)),
          `README does not show \`${prog} ${s}\``,
        );
    }
  });

  test('blocks marked run succeed', async () => {
    const runs = doc.blocks.filter((b) => b.marker?.kind === 'run');
    assert.ok(runs.length >= 1, 'no block marked run');
    const dir = tempDir('buildtrace-readme-');
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    for (const [name, cli] of Object.entries(OURS)) symlinkSync(cli, join(bin, name));
    for (const b of runs) {
      const work = join(dir, `block-${b.line}`);
      mkdirSync(work);
      const script = join(work, 'block.sh');
      writeFileSync(script, `${b.body}\n`);
      chmodSync(script, 0o700);
      const r = await run('bash', ['-euo', 'pipefail', script], { cwd: work, env: nixEnv({}, { PATH: `${bin}:${process.env.PATH ?? ''}` }) });
      assert.equal(r.code, 0, `README.md:${b.line}: the block exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    }
  });
});

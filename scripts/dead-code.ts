/**
 * Dead-code check for CI (`npm run lint`): an exported name of the library, daemon or
 * verifier that no other file mentions should not be exported (or should not exist), and
 * every error code in src/errors.ts must be raised somewhere. Biome does not see across
 * modules, tsc does not report unused exports. Exits 1 listing each finding.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const files = execFileSync('git', ['ls-files', '*.ts'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => /^(src|daemon|verify|test|bench|scripts)\//.test(f) && !f.endsWith('.d.ts'));
const text = new Map(files.map((f) => [f, readFileSync(f, 'utf8')]));
const word = (name: string): RegExp => new RegExp(`(?<![\\w$])${name.replace(/\$/g, '\\$')}(?![\\w$])`);
const findings: string[] = [];

const exported = /^export (?:declare )?(?:async )?(?:function\*?|const|let|class|interface|type|enum|abstract class) +([A-Za-z_$][\w$]*)/gm;
for (const [file, src] of text) {
  if (!/^(src|daemon|verify)\//.test(file)) continue;
  for (const m of src.matchAll(exported)) {
    const name = m[1] as string;
    const w = word(name);
    if ([...text].some(([other, t]) => other !== file && w.test(t))) continue;
    const uses = src.split('\n').filter((l) => w.test(l)).length;
    findings.push(`${file}: ${name} is exported but ${uses > 1 ? 'only used in its own file (drop "export")' : 'never used'}`);
  }
}

const errors = text.get('src/errors.ts') ?? '';
const union = /export type ErrorCode =([^;]*);/s.exec(errors)?.[1] ?? '';
for (const m of union.matchAll(/'([A-Z_]+)'/g)) {
  const code = m[1] as string;
  const quoted = new RegExp(`'${code}'`);
  const raisedElsewhere = [...text].some(([f, t]) => f !== 'src/errors.ts' && quoted.test(t));
  if (!raisedElsewhere) findings.push(`src/errors.ts: error code ${code} is never raised`);
}

for (const f of findings) console.error(f);
if (findings.length > 0) {
  console.error(`dead-code: ${findings.length} finding(s)`);
  process.exit(1);
}
console.error('dead-code: no unused exports or error codes');

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers.js';

/**
 * Every failure code trace-verify can report is in README's lists and is produced by at
 * least one test through the CLI: a test file that runs trace-verify (VERIFY_CLI) and compares
 * a problem's code with it. The codes are read from their type (src/verify/claims.ts,
 * last-mile.ts and target.ts), so a new code without a README entry or a test fails here.
 */
function unionMembers(file: string, typeName: string): string[] {
  const src = readFileSync(join(ROOT, file), 'utf8');
  const start = src.indexOf(`export type ${typeName} =`);
  assert.ok(start >= 0, `${typeName} in ${file}`);
  const body = src.slice(start, src.indexOf(';', start));
  return [...body.matchAll(/'([a-z-]+)'/g)].map((m) => m[1] as string);
}

const codes = [
  ...unionMembers('src/verify/claims.ts', 'ProblemCode'),
  ...unionMembers('src/verify/claims.ts', 'DerivedProblemCode'),
  ...unionMembers('src/verify/last-mile.ts', 'LastMileProblemCode'),
  ...unionMembers('src/verify/target.ts', 'TargetProblemCode'),
];

test('the failure codes are read from their types (the scan itself works)', () => {
  assert.ok(codes.length >= 19, codes.join(', '));
  for (const c of ['no-bundle', 'output-mismatch', 'bound-hit', 'content-mismatch', 'unchecked-path']) assert.ok(codes.includes(c), c);
});

test("every failure code is in README's lists", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const missing = codes.filter((c) => !readme.includes(`\`${c}\``));
  assert.deepEqual(missing, [], 'codes README does not name');
});

test('every failure code is produced by a test through the CLI and compared by that test', () => {
  const dir = join(ROOT, 'test');
  const cliTests = readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .filter((text) => text.includes('VERIFY_CLI'));
  const asserted = (c: string): boolean =>
    cliTests.some((t) =>
      [`code === '${c}'`, `problemAt(r.r, '${c}'`, `problemAt(byDefault.r, '${c}'`, `['${c}'`, `includes('${c}')`, `code: '${c}'`].some((p) => t.includes(p)),
    );
  const untested = codes.filter((c) => !asserted(c));
  assert.deepEqual(untested, [], 'failure codes no CLI test asserts');
});

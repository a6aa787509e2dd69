/**
 * Build step (`npm run build`): compiles every schema in schemas/ to a standalone ajv
 * validator, dist/schemas/<name>.cjs. Loading one costs about a millisecond; loading ajv
 * and compiling at run time costs about 90 ms, a fixed cost of every trace-verify run.
 * Each file records the SHA-256 of the schema text it was made from, so a stale one is
 * never used (schema.ts then compiles at run time).
 *   node dist/scripts/schema-compile.js
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Ajv2020 as Ajv2020Type } from 'ajv/dist/2020.js';
import { COMPILED_SCHEMA_DIR, SCHEMA_DIR, newAjv } from '../src/util/schema.js';

const require = createRequire(import.meta.url);
const standaloneCode = (require('ajv/dist/standalone/index.js') as { default: (ajv: Ajv2020Type, fn: unknown) => string }).default;

const names = readdirSync(SCHEMA_DIR)
  .filter((n) => n.endsWith('.schema.json'))
  .sort();
const texts = new Map(names.map((n) => [n, readFileSync(SCHEMA_DIR + n, 'utf8')]));
const ajv = newAjv({ code: { source: true } });
// every schema is known by its $id, so $refs between them resolve
for (const text of texts.values()) ajv.addSchema(JSON.parse(text) as object);
mkdirSync(COMPILED_SCHEMA_DIR, { recursive: true });
for (const [name, text] of texts) {
  const id = (JSON.parse(text) as { $id?: string }).$id;
  const validate = id ? ajv.getSchema(id) : undefined;
  if (!validate) throw new Error(`schemas/${name} has no $id`);
  const sha = createHash('sha256').update(text).digest('hex');
  const out = `${COMPILED_SCHEMA_DIR}${name.replace(/\.json$/, '')}.cjs`;
  writeFileSync(
    `${out}.tmp`,
    `// generated from schemas/${name} by scripts/schema-compile.ts; do not edit\n${standaloneCode(ajv, validate)}\nmodule.exports.schemaSha256 = ${JSON.stringify(sha)};\n`,
  );
  renameSync(`${out}.tmp`, out);
}
process.stderr.write(`schema-compile: ${names.length} validators in ${COMPILED_SCHEMA_DIR}\n`);

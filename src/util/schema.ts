import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv2020, ErrorObject, Options, ValidateFunction } from 'ajv/dist/2020.js';
import { BuildtraceError, type ErrorCode } from '../errors.js';
import type { JsonValue } from './strict-json.js';

/** schemas/ at the package root; this file is dist/src/util/schema.js. */
export const SCHEMA_DIR = fileURLToPath(new URL('../../../schemas/', import.meta.url));
/** Standalone validators made by scripts/schema-compile.ts at build time. */
export const COMPILED_SCHEMA_DIR = fileURLToPath(new URL('../../schemas/', import.meta.url));

const require = createRequire(import.meta.url);

/** The one ajv configuration, shared by the build-time compiler and the run-time fallback. */
export function newAjv(extra: Options = {}): Ajv2020 {
  const { Ajv2020: Ctor } = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
  return new Ctor({ allErrors: true, strict: true, ...extra });
}

let ajv: Ajv2020 | undefined;
const compiled = new Map<string, ValidateFunction>();

function describe(e: ErrorObject): string {
  const where = e.instancePath === '' ? '(top level)' : e.instancePath.slice(1).replaceAll('/', '.');
  if (e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties') {
    const p = e.params as { additionalProperty?: string; unevaluatedProperty?: string };
    return `${where}: unknown field ${JSON.stringify(p.additionalProperty ?? p.unevaluatedProperty)}`;
  }
  if (e.keyword === 'enum') return `${where}: must be one of ${JSON.stringify((e.params as { allowedValues: unknown }).allowedValues)}`;
  return `${where}: ${e.message ?? 'is invalid'}`;
}

function schemaText(name: string): string {
  return readFileSync(SCHEMA_DIR + name, 'utf8');
}

/** The build's standalone validator, if there is one made from this very schema text. */
export function precompiled(name: string, text: string): ValidateFunction | undefined {
  let v: ValidateFunction & { schemaSha256?: string };
  try {
    v = require(`${COMPILED_SCHEMA_DIR}${name.replace(/\.json$/, '')}.cjs`) as typeof v;
  } catch {
    return undefined;
  }
  return v.schemaSha256 === createHash('sha256').update(text).digest('hex') ? v : undefined;
}

function addSchema(text: string): object {
  const schema = JSON.parse(text) as { $id?: string };
  ajv ??= newAjv();
  if (schema.$id && !ajv.getSchema(schema.$id)) ajv.addSchema(schema);
  return schema;
}

/** Compiled now, by ajv (loaded on first use): when the build's validator is missing or stale. */
export function runtimeValidator(name: string, text = schemaText(name)): ValidateFunction {
  // schemas may $ref each other by file name, relative to their $id
  for (const dep of ['tee-policy.schema.json', 'trust-policy.schema.json']) if (dep !== name) addSchema(schemaText(dep));
  const schema = addSchema(text) as { $id?: string };
  const a = ajv as Ajv2020;
  return (schema.$id ? a.getSchema(schema.$id) : undefined) ?? a.compile(schema);
}

function schemaValidator(name: string): ValidateFunction {
  let v = compiled.get(name);
  if (!v) {
    const text = schemaText(name);
    v = precompiled(name, text) ?? runtimeValidator(name, text);
    compiled.set(name, v);
  }
  return v;
}

/** Validates `value` against schemas/<name>; the error names the file and every offending field. */
export function validateAgainst<T>(name: string, value: JsonValue, subject: string, code: ErrorCode): T {
  const v = schemaValidator(name);
  if (!v(value)) {
    const msgs = (v.errors ?? []).map(describe);
    throw new BuildtraceError(code, `${subject}: ${[...new Set(msgs)].join('; ')}`, { subject });
  }
  return value as T;
}

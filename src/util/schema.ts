import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { BuildtraceError, type ErrorCode } from '../errors.js';
import type { JsonValue } from './strict-json.js';

/** schemas/ at the package root; this file is dist/src/util/schema.js. */
export const SCHEMA_DIR = fileURLToPath(new URL('../../../schemas/', import.meta.url));

const ajv = new Ajv2020({ allErrors: true, strict: true });
const compiled = new Map<string, ValidateFunction>();

function describe(e: ErrorObject): string {
  const where = e.instancePath === '' ? '(top level)' : e.instancePath.slice(1).replaceAll('/', '.');
  if (e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties') {
    const p = (e.params as { additionalProperty?: string; unevaluatedProperty?: string });
    return `${where}: unknown field ${JSON.stringify(p.additionalProperty ?? p.unevaluatedProperty)}`;
  }
  if (e.keyword === 'enum') return `${where}: must be one of ${JSON.stringify((e.params as { allowedValues: unknown }).allowedValues)}`;
  return `${where}: ${e.message ?? 'is invalid'}`;
}

function addSchema(name: string): object {
  const schema = JSON.parse(readFileSync(SCHEMA_DIR + name, 'utf8')) as { $id?: string };
  if (schema.$id && !ajv.getSchema(schema.$id)) ajv.addSchema(schema);
  return schema;
}

export function schemaValidator(name: string): ValidateFunction {
  let v = compiled.get(name);
  if (!v) {
    // schemas may $ref each other by file name, relative to their $id
    for (const dep of ['tee-policy.schema.json']) if (dep !== name) addSchema(dep);
    const schema = addSchema(name) as { $id?: string };
    v = (schema.$id ? ajv.getSchema(schema.$id) : undefined) ?? ajv.compile(schema);
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

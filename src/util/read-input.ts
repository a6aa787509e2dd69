import { readFileSync } from 'node:fs';
import { BuildtraceError } from '../errors.js';

/** Reads a file the user named; a failure says which file, what it was for, and why. */
export function readInput(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new BuildtraceError('FILE_UNREADABLE', `cannot read ${what} ${file}: ${code}`, { subject: file, cause: err });
  }
}

export function readTextInput(file: string, what: string): string {
  return readInput(file, what).toString('utf8');
}

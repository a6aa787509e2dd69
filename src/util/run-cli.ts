import { errorMessage, exitCodeFor } from '../errors.js';

/** Runs a command's main: its result is the exit code; an error is one line on stderr and the mapped exit code. */
export function runCli(name: string, main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${name}: ${errorMessage(err)}\n`);
      process.exitCode = exitCodeFor(err);
    },
  );
}

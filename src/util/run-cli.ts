import { EXIT_INTERNAL, exitCodeFor, reportedMessage } from '../errors.js';

/**
 * Runs a command's main: its result is the exit code; an error is one line on stderr and the
 * mapped exit code. An exception nobody caught (Node's default exit status 1 would read as "not
 * verified") ends the process with the internal-error status instead.
 */
export function runCli(name: string, main: (argv: string[]) => Promise<number>): void {
  const internal = (err: unknown): void => {
    process.stderr.write(`${name}: ${reportedMessage(err)}\n`);
    process.exit(EXIT_INTERNAL);
  };
  process.on('uncaughtException', internal);
  process.on('unhandledRejection', internal);
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${name}: ${reportedMessage(err)}\n`);
      process.exitCode = exitCodeFor(err);
    },
  );
}

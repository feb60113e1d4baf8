#!/usr/bin/env node
// `npx sequelize-multitenant <command> ...`: the doctor (is the schema ready for tenants and Citus?) and the
// tenant lifecycle (export, delete, import, copy one tenant). Each command loads the application's module
// for its Sequelize instance; errors are one sentence on stderr, the exit code says how it ended.
import { DOCTOR_USAGE, doctor } from './doctor';
import { LIFECYCLE_COMMANDS, LIFECYCLE_USAGE, type LifecycleCommand, lifecycle } from './lifecycle';
import { UsageError } from './load';

const USAGE = `${DOCTOR_USAGE}

${LIFECYCLE_USAGE}`;

/** Runs one command line (`process.argv.slice(2)`): the exit code. */
export async function main(
  argv: string[],
  io: {
    out?: (line: string) => void;
    err?: (line: string) => void;
    stdout?: NodeJS.WritableStream;
    stdin?: NodeJS.ReadableStream;
    signal?: AbortSignal;
  } = {},
): Promise<number> {
  const out = io.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = io.err ?? ((l: string) => process.stderr.write(`${l}\n`));
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      out(USAGE);
      return command === undefined ? 2 : 0;
    }
    if (command === 'doctor') return await doctor(rest, out);
    if ((LIFECYCLE_COMMANDS as readonly string[]).includes(command)) {
      return await lifecycle(command as LifecycleCommand, rest, {
        out,
        err,
        stdout: io.stdout ?? process.stdout,
        stdin: io.stdin ?? process.stdin,
        signal: io.signal,
      });
    }
    out(`unknown command ${command}\n${USAGE}`);
    return 2;
  } catch (e) {
    err(`sequelize-multitenant ${command}: ${e instanceof Error ? e.message : String(e)}`);
    if (!(e instanceof UsageError) && process.env.DEBUG) err(String((e as Error).stack));
    return 2;
  }
}

if (require.main === module) {
  // the first Ctrl-C (or SIGTERM) stops a lifecycle command between two statements; a second one ends the process
  const stop = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(130);
    process.stderr.write(`sequelize-multitenant: ${name}, stopping after the current statement (again to quit now)\n`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  main(process.argv.slice(2), { signal: stop.signal }).then((code) => {
    process.exitCode = code;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
}

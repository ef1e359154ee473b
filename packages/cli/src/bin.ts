#!/usr/bin/env node
import { EXIT_CODES, runCli } from './cli.js';

// `ctx list | head -1` closes the pipe early: that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  // Only a long-running command (ctx worker) subscribes: the others keep Node's default, where
  // Ctrl-C ends them at once.
  onStopRequest(listener) {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`ctx: ${signal} again: exiting now\n`);
        process.exit(EXIT_CODES.failure);
      }
      stopping = true;
      listener(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    return () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
  },
});
process.exitCode = code;
// The repository is closed by now, but a driver may keep a timer running after close (ioredis
// waits up to 2 s for a socket that is already gone): output is written, so do not wait for it.
setTimeout(() => process.exit(code), 200).unref();

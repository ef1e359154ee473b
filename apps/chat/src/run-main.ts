import type { ChatIo } from './chat-shell.js';

/** Runs a chat app on this process's arguments, environment and standard streams. */
export async function runMain(run: (io: ChatIo) => Promise<number>): Promise<void> {
  process.exitCode = await run({
    argv: process.argv.slice(2),
    env: process.env,
    input: process.stdin,
    output: process.stdout,
    errorOutput: process.stderr,
  });
}

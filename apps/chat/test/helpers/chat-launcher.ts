import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** What a finished chat process left behind. */
export interface ChatRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running chat process that the test talks to line by line. */
export interface ChatProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Everything written to stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Writes one line to the chat's stdin. */
  send(line: string): void;
  /** Resolves when stdout matches (or rejects after `timeoutMs` with what was seen). */
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  /** Closes stdin (Ctrl-D) and waits for the process to exit. */
  end(): Promise<ChatRun>;
  /** Resolves when the process exits. */
  exited(): Promise<ChatRun>;
}

/**
 * A clean environment: no model or store variables leak in from the machine running the tests,
 * no colours.
 */
export function chatEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    NO_COLOR: '1',
    ...extra,
  };
}

/** Where a chat app is: its folder and its built entry point. */
interface ChatApp {
  /** The app folder (the default working directory). */
  dir: string;
  /** `dist/main.js` in it, run the way a user runs it. */
  main: string;
}

/** What a chat app's tests use to run it. */
export interface ChatLauncher {
  /** Starts `node dist/main.js <args>` with piped stdin/stdout/stderr. */
  startChat(args: string[], options: { env: NodeJS.ProcessEnv; cwd?: string }): ChatProcess;
  /** Runs the chat with the whole input piped at once, as `printf '…' | node dist/main.js` would. */
  runChat(
    args: string[],
    input: string[],
    options: { env: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number },
  ): Promise<ChatRun>;
}

/** The launcher of the chat app in `appDir` (its `dist/main.js` must be built). */
export function chatLauncher(appDir: URL): ChatLauncher {
  const app: ChatApp = {
    dir: fileURLToPath(appDir),
    main: fileURLToPath(new URL('dist/main.js', appDir)),
  };
  return {
    startChat: (args, options) => startChat(app, args, options),
    runChat: (args, input, options) => runChat(app, args, input, options),
  };
}

/** Starts `node dist/main.js <args>` with piped stdin/stdout/stderr. */
function startChat(
  app: ChatApp,
  args: string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string },
): ChatProcess {
  const child = spawn(process.execPath, [app.main, ...args], {
    env: options.env,
    cwd: options.cwd ?? app.dir,
    stdio: 'pipe',
  });
  // The chat may exit (e.g. on a startup error) before reading its input.
  child.stdin.on('error', () => {});
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const listener of listeners) listener();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exit = new Promise<ChatRun>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    send(line) {
      child.stdin.write(`${line}\n`);
    },
    waitFor(pattern, timeoutMs = 10_000) {
      const matches = () =>
        typeof pattern === 'string' ? stdout.includes(pattern) : pattern.test(stdout);
      return new Promise<void>((resolve, reject) => {
        if (matches()) return resolve();
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(
              `timed out waiting for ${String(pattern)}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
            ),
          );
        }, timeoutMs);
        const check = () => {
          if (!matches()) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve();
        };
        listeners.add(check);
        void exit.then(() => {
          if (!listeners.has(check)) return;
          clearTimeout(timer);
          listeners.delete(check);
          reject(
            new Error(
              `the chat exited before printing ${String(pattern)}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
            ),
          );
        });
      });
    },
    end() {
      child.stdin.end();
      return exit;
    },
    exited: () => exit,
  };
}

/** Runs the chat with the whole input piped at once, as `printf '…' | node dist/main.js` would. */
function runChat(
  app: ChatApp,
  args: string[],
  input: string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number },
): Promise<ChatRun> {
  const chat = startChat(app, args, options);
  chat.child.stdin.end(input.map((line) => `${line}\n`).join(''));
  const timeoutMs = options.timeoutMs ?? 20_000;
  return new Promise<ChatRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      chat.child.kill('SIGKILL');
      reject(
        new Error(
          `chat did not exit within ${timeoutMs} ms\n--- stdout ---\n${chat.stdout()}\n--- stderr ---\n${chat.stderr()}`,
        ),
      );
    }, timeoutMs);
    void chat.exited().then((run) => {
      clearTimeout(timer);
      resolve(run);
    });
  });
}

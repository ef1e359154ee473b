import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const packageRoot = fileURLToPath(new URL('../..', import.meta.url));
const children: ChildProcess[] = [];

/** A child Node process that reports through stdout lines and is steered through stdin lines. */
export interface Worker<Report> {
  /** Resolves when the process printed `line` (rejects if it exits first). */
  printed(line: string): Promise<void>;
  /** Sends one line to its stdin. */
  send(line: string): void;
  /** Kills it at once (SIGKILL): no cleanup, no flush, as a crash or an OOM kill would. */
  kill(): void;
  /** Its exit code, stderr, and its last stdout line parsed as JSON. */
  done: Promise<{ exitCode: number | null; report: Report | undefined; stderr: string }>;
}

/**
 * Starts `script` (a file of test/fixtures) with `job` as JSON in argv[2], from the package root
 * so it imports the built workspace packages by name.
 */
export function spawnWorker<Report>(script: string, job: unknown): Worker<Report> {
  const path = fileURLToPath(new URL(`../fixtures/${script}`, import.meta.url));
  const child = spawn(process.execPath, [path, JSON.stringify(job)], {
    cwd: packageRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
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
  const done = new Promise<{ exitCode: number | null; report: Report | undefined; stderr: string }>(
    (resolve) => {
      child.on('close', (exitCode) => {
        const last = stdout.trim().split('\n').pop() ?? '';
        let report: Report | undefined;
        try {
          report = JSON.parse(last) as Report;
        } catch {
          report = undefined;
        }
        resolve({ exitCode, report, stderr });
      });
    },
  );
  return {
    printed: (line) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (stdout.split('\n').includes(line)) {
            listeners.delete(check);
            resolve();
          }
        };
        listeners.add(check);
        check();
        void done.then(() => {
          listeners.delete(check);
          reject(new Error(`worker exited before printing "${line}": ${stderr}${stdout}`));
        });
      }),
    send: (line) => child.stdin.write(`${line}\n`),
    kill: () => child.kill('SIGKILL'),
    done,
  };
}

/** Kills every worker still running (call in `afterAll`). */
export function killWorkers(): void {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
}

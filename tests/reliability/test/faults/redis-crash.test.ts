import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedisRepository, type RedisRepository } from '@ctx/store-redis';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { randomId } from '../helpers/backends.js';
import { Load } from '../helpers/load.js';
import { freePort } from '../helpers/ports.js';

// End to end through SessionContextStore under load: writers keep updating sessions while the
// Redis server is killed (SIGKILL: a crash, not a clean shutdown) and started again.
//
// The shared server on 6379 runs without persistence (`--save "" --appendonly no`): a restart
// empties it, so "every acknowledged write survives" cannot hold there by construction (the
// adapter's own fault test, packages/store-redis/test/faults, covers that server's outage
// behaviour). This test starts a PRIVATE redis-server on a free port with the append-only file
// fsynced on every write (`--appendonly yes --appendfsync always`) in a temporary folder, which it
// kills and restarts itself: it never touches the shared server, so it needs no CTX_FAULT_TESTS
// gate, and it tests what a production deployment with durable Redis relies on.

class PrivateRedis {
  #child: ChildProcess | undefined;
  readonly folder = mkdtempSync(join(tmpdir(), 'ctx-reliability-redis-'));

  readonly port: number;

  constructor(port: number) {
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.folder,
        '--logfile',
        join(this.folder, 'redis.log'),
        '--daemonize',
        'no',
      ],
      { stdio: 'ignore' },
    );
    this.#child = child;
    const deadline = Date.now() + 20_000;
    while (!(await this.ping())) {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${this.log()}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer: ${this.log()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** SIGKILL: no chance to flush or clean up, like a crash or an OOM kill. */
  async crash(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async ping(): Promise<boolean> {
    const client = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 500,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  }

  log(): string {
    try {
      return readFileSync(join(this.folder, 'redis.log'), 'utf8').slice(-2_000);
    } catch {
      return '(no log)';
    }
  }

  async dispose(): Promise<void> {
    await this.crash();
    rmSync(this.folder, { recursive: true, force: true });
  }
}

let server: PrivateRedis | undefined;
afterAll(async () => {
  await server?.dispose();
});

describe('Redis (durable, private server) killed and restarted under load', () => {
  it('typed errors during the outage, recovery afterwards, every acknowledged write kept, no torn snapshot', async () => {
    server = new PrivateRedis(await freePort());
    await server.start();
    const keyPrefix = `ctx-rel-fault-${randomId('p')}`;
    const options = {
      url: server.url,
      keyPrefix,
      connectTimeoutMs: 1_000,
      commandTimeoutMs: 1_000,
    };
    const repositories: RedisRepository[] = [
      createRedisRepository(options),
      createRedisRepository(options),
    ];
    const sessionIds = [randomId('redis-fault-a'), randomId('redis-fault-b')];
    const load = new Load(repositories, sessionIds, randomId('owner'), {
      pauseOnErrorMs: 100,
      maxTurnsPerWriter: 20_000,
    });
    try {
      load.start();
      await load.until(
        () => load.writers.every((writer) => writer.acknowledged >= 20),
        'every writer to write before the crash',
        30_000,
      );

      await server.crash();
      const crashed = Date.now();
      await load.until(
        () => Date.now() - crashed >= 2_000 && load.writers.every((writer) => writer.errors >= 1),
        'every writer to see the outage',
        30_000,
      );
      await server.start();
      load.markRecoveryPhase();
      await load.until(
        () => load.writers.every((writer) => writer.acknowledgedAfter >= 20),
        'every writer to write again after the restart',
        60_000,
      );
      await load.stop();

      const codes = [...load.errorCodes.keys()];
      expect(codes, load.describe()).toContain('STORAGE_UNAVAILABLE');
      for (const code of codes) {
        expect(['STORAGE_UNAVAILABLE', 'VERSION_CONFLICT'], load.describe()).toContain(code);
      }
      // Read back through a repository that never saw the crash.
      const fresh = createRedisRepository({ url: server.url, keyPrefix });
      try {
        await load.verify(fresh);
      } finally {
        await fresh.close();
      }
    } finally {
      await load.stop();
      for (const repository of repositories) await repository.close();
    }
  });
});

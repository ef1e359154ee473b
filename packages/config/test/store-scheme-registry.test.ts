import { ContextError, createMemoryRepository, type ValidationError } from '@ctx/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createRepositoryFromUrl,
  listStoreSchemes,
  parseStoreUrl,
  registerStoreScheme,
  STORE_URL_SCHEMES,
  type StoreScheme,
  type StoreSchemeOptions,
} from '../src/index.js';
import { sampleSnapshot } from './helpers.js';

// What a third-party adapter declares so its entry and parseStoreUrl's result are typed.
declare module '../src/index.js' {
  interface StoreLocations {
    bucket: { bucket: string; region: string };
  }
}

/** A stand-in for a third-party adapter package: an in-memory repository that records its options. */
const bucketAdapter = {
  created: [] as Array<{ bucket: string; region: string; options: StoreSchemeOptions }>,
  createBucketRepository(bucket: string, region: string, options: StoreSchemeOptions) {
    bucketAdapter.created.push({ bucket, region, options });
    return createMemoryRepository({
      ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
      ...(options.historyLimit === undefined ? {} : { historyLimit: options.historyLimit }),
      ...(options.tombstoneRetentionMs === undefined
        ? {}
        : { tombstoneRetentionMs: options.tombstoneRetentionMs }),
    });
  },
};

function bucketScheme(
  overrides: Partial<StoreScheme<'bucket', typeof bucketAdapter>> = {},
): StoreScheme<'bucket', typeof bucketAdapter> {
  return {
    kind: 'bucket',
    schemes: ['bucket', 'bucket+tls'],
    form: 'bucket://<region>/<bucket>',
    parameters: ['prefix'],
    packageName: 'ctx-store-bucket',
    install: 'ctx-store-bucket bucket-sdk',
    parse(parts) {
      const match = /^\/\/([a-z0-9-]+)\/([a-z0-9-]+)$/.exec(parts.rest);
      if (!match) throw parts.invalid('url', 'expected bucket://<region>/<bucket>');
      return { region: match[1] as string, bucket: match[2] as string };
    },
    load: async () => bucketAdapter,
    create: (adapter, location, options) =>
      adapter.createBucketRepository(location.bucket, location.region, options),
    ...overrides,
  };
}

function configError(run: () => unknown): ValidationError {
  try {
    run();
  } catch (error) {
    expect(ContextError.hasCode(error, 'INVALID_CONFIG')).toBe(true);
    return error as ValidationError;
  }
  throw new Error('expected an INVALID_CONFIG error');
}

const unregister: Array<() => void> = [];
function register(entry: StoreScheme<'bucket', typeof bucketAdapter>): void {
  unregister.push(registerStoreScheme(entry));
}

afterEach(() => {
  for (const remove of unregister.splice(0)) remove();
  bucketAdapter.created.length = 0;
});

describe('the built-in store schemes', () => {
  it('are registered in order: memory, sqlite, postgres, redis, mysql', () => {
    const entries = listStoreSchemes();
    expect(entries.map((entry) => entry.kind)).toEqual([
      'memory',
      'sqlite',
      'postgres',
      'redis',
      'mysql',
    ]);
    expect(entries.flatMap((entry) => entry.schemes)).toEqual([...STORE_URL_SCHEMES]);
    expect(entries.map((entry) => entry.packageName)).toEqual([
      '@ctx/core',
      '@ctx/store-sqlite',
      '@ctx/store-postgres',
      '@ctx/store-redis',
      '@ctx/store-mysql',
    ]);
  });

  it('cannot be taken over by another entry', () => {
    const error = configError(() => registerStoreScheme(bucketScheme({ schemes: ['mariadb'] })));
    expect(error.message).toContain('"mariadb", already registered by "mysql"');
  });
});

describe('registerStoreScheme', () => {
  it('makes parseStoreUrl read the location and the parameters of a new scheme', () => {
    register(bucketScheme());
    expect(parseStoreUrl('bucket://eu-west-1/sessions?prefix=bot&ttl=1h&tombstones=2d')).toEqual({
      kind: 'bucket',
      bucket: 'sessions',
      region: 'eu-west-1',
      options: { keyPrefix: 'bot', ttlMs: 3_600_000, tombstoneRetentionMs: 2 * 86_400_000 },
    });
    expect(parseStoreUrl('BUCKET+TLS://us-east-2/archive').kind).toBe('bucket');
  });

  it('lists the new scheme when a scheme is unknown, and forgets it once unregistered', () => {
    const remove = registerStoreScheme(bucketScheme());
    const listed = configError(() => parseStoreUrl('ftp://example.com/db')).message;
    expect(listed).toContain(
      'Supported schemes: memory, sqlite, postgres, postgresql, redis, rediss, mysql, mariadb, bucket, bucket+tls',
    );
    remove();
    remove();
    const error = configError(() => parseStoreUrl('bucket://eu-west-1/sessions'));
    expect(error.message).toContain('no backend is registered for "bucket:"');
    expect(error.message).not.toContain('bucket+tls');
    expect(listStoreSchemes().map((entry) => entry.kind)).not.toContain('bucket');
  });

  it('refuses parameters the entry does not take, and reports what its parse refuses', () => {
    register(bucketScheme());
    expect(configError(() => parseStoreUrl('bucket://eu/b?table=t')).message).toContain(
      'bucket URLs take ttl, history, tombstones, prefix',
    );
    expect(configError(() => parseStoreUrl('bucket://eu/b?region=x')).message).toContain(
      'region: unknown parameter',
    );
    const error = configError(() => parseStoreUrl('bucket://user:hunter2@eu/b'));
    expect(error.message).toBe(
      'Invalid store URL "bucket://user:***@eu/b": url: expected bucket://<region>/<bucket>',
    );
  });

  it('hands driver parameters to the entry when it takes them', () => {
    const seen: string[] = [];
    register(
      bucketScheme({
        driverParameters: true,
        parse(parts) {
          seen.push(parts.url, parts.rest, parts.scheme);
          return { bucket: 'b', region: 'r' };
        },
      }),
    );
    parseStoreUrl('Bucket://eu/b?retries=3&ttl=1d&sdk=v2');
    expect(seen).toEqual(['Bucket://eu/b?retries=3&sdk=v2', '//eu/b', 'bucket']);
  });

  it('lets createRepositoryFromUrl load the adapter and create the repository', async () => {
    register(bucketScheme());
    const repository = await createRepositoryFromUrl('bucket://eu-west-1/sessions?history=3', {
      ttlMs: 60_000,
      historyLimit: 9,
      tombstoneRetentionMs: 5_000,
      migrate: false,
      connectTimeoutMs: 1_500,
    });
    expect(bucketAdapter.created).toEqual([
      {
        bucket: 'sessions',
        region: 'eu-west-1',
        options: {
          ttlMs: 60_000,
          historyLimit: 3,
          tombstoneRetentionMs: 5_000,
          migrate: false,
          connectTimeoutMs: 1_500,
        },
      },
    ]);
    const snapshot = sampleSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    expect(await repository.get(snapshot.sessionId)).toEqual(snapshot);
    expect(repository.capabilities).toEqual({
      ttl: true,
      history: true,
      turnLog: true,
      fields: true,
    });
    await repository.close();
  });

  it('names what to install when the adapter package cannot be loaded', async () => {
    const missing = 'ctx-store-bucket-that-is-not-installed';
    register(bucketScheme({ load: () => import(missing) }));
    const error = await createRepositoryFromUrl('bucket://eu/b').catch((caught: unknown) => caught);
    expect(ContextError.hasCode(error, 'INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toContain(
      'A bucket:// store URL needs ctx-store-bucket, which could not be loaded',
    );
    expect((error as Error).message).toContain('install ctx-store-bucket bucket-sdk');
  });

  it.each([
    [{ kind: '' }, 'kind'],
    [{ kind: 'memory' }, 'kind'],
    [{ schemes: [] }, 'schemes'],
    [{ schemes: ['Bucket'] }, 'schemes'],
    [{ schemes: ['bucket:'] }, 'schemes'],
    [{ schemes: ['bucket', 'bucket'] }, 'schemes'],
    [{ schemes: ['sqlite'] }, 'schemes'],
    [{ form: ' ' }, 'form'],
    [{ packageName: '' }, 'packageName'],
    [{ install: '' }, 'install'],
    [{ parameters: ['table', 'colour'] }, 'parameters'],
    [{ load: 'ctx-store-bucket' }, 'load'],
  ])('refuses the malformed entry %j', (override, path) => {
    const entry = { ...bucketScheme(), ...override } as unknown as StoreScheme<
      'bucket',
      typeof bucketAdapter
    >;
    const error = configError(() => registerStoreScheme(entry));
    expect(error.issues[0]?.path).toBe(path);
    expect(listStoreSchemes().map((scheme) => scheme.kind)).not.toContain('bucket');
  });
});

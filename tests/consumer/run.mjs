// The consumer test: what a new user gets from npm, proven from the packed tarballs.
//
//   bash scripts/consumer-test.sh        (fetches the second Node, then runs this file)
//
// 1. builds the workspace's packages and packs every published one (packages/* not private);
// 2. checks each tarball for packaging mistakes (check-tarball.mjs);
// 3. per generation, in a fresh npm project outside the workspace, installs the tarballs with
//    plain `npm install` next to that generation's majors (dependencies.json):
//      oldest  system Node (20): openai 6, @google/genai 2, better-sqlite3 12, ai 6
//      newest  Node 24:          openai 7, @google/genai 3, better-sqlite3 13, ai 7
//    then typechecks every TypeScript block of the root README and of each published package's
//    README (NodeNext and bundler resolution, strict, exactOptionalPropertyTypes, skipLibCheck
//    false) and runs the root README's example on SQLite against a local OpenAI-compatible server;
// 4. installs @ctx/cli alone and checks that it names the package a store URL needs.
//
// Output: one line per step; a failing step prints its full log. Logs stay in the work folder
// (printed at the end) when the test fails, or always with CTX_CONSUMER_KEEP=1.
// Environment: CTX_PNPM (the pnpm command, default `pnpm`), CTX_CONSUMER_NODE24 (the second
// Node's folder, from scripts/second-node.sh; without it only the oldest generation runs and the
// test fails), CTX_CONSUMER_SERIAL=1 (one generation after the other instead of side by side),
// CTX_CONSUMER_SKIP_BUILD=1 (use dist/ as it is).
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkTarball } from './check-tarball.mjs';
import { readmePrograms } from './readme-blocks.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEPENDENCIES = JSON.parse(readFileSync(join(HERE, 'dependencies.json'), 'utf8'));
const PNPM = (process.env.CTX_PNPM ?? 'pnpm').split(' ');
const started = Date.now();
const work = mkdtempSync(join(tmpdir(), 'ctx-consumer-'));
const failures = [];

function say(line) {
  console.log(`consumer: ${line}`);
}

function seconds(since) {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

/** Environment for child processes, without what an enclosing npm/pnpm run put there. */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (
      /^(npm_(package|lifecycle|command|execpath|node_execpath)|npm_config_(prefix|global|user_agent|frozen_lockfile)|PNPM_|INIT_CWD)/i.test(
        name,
      )
    )
      continue;
    env[name] = value;
  }
  return {
    ...env,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    ...extra,
  };
}

/**
 * Runs a command with its output in a log file. Resolves with the exit code and the log's text;
 * `expectCode` (default 0) other than the actual one rejects after printing the log.
 */
function run(label, command, args, { cwd, env = cleanEnv(), log, expectCode = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(log, { flags: 'a' });
    out.write(`$ ${[command, ...args].join(' ')}  (in ${cwd})\n`);
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    const collect = (chunk) => {
      text += chunk;
      out.write(chunk);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (code) => {
      out.end();
      if (expectCode !== null && code !== expectCode) {
        console.log(readFileSync(log, 'utf8'));
        reject(new Error(`${label}: exit code ${code} (log: ${log})`));
      } else {
        resolve({ code, text });
      }
    });
  });
}

/** The published packages: packages/* whose manifest is not private. */
function publishedPackages() {
  return readdirSync(join(ROOT, 'packages'))
    .filter((folder) => existsSync(join(ROOT, 'packages', folder, 'package.json')))
    .map((folder) => ({
      folder,
      manifest: JSON.parse(readFileSync(join(ROOT, 'packages', folder, 'package.json'), 'utf8')),
    }))
    .filter((entry) => entry.manifest.private !== true);
}

async function inBatches(items, size, body) {
  const results = [];
  for (let index = 0; index < items.length; index += size) {
    results.push(...(await Promise.all(items.slice(index, index + size).map(body))));
  }
  return results;
}

function versionFor(name, generation) {
  const entry = DEPENDENCIES.versions[name];
  if (entry === undefined) return undefined;
  const range = typeof entry === 'string' ? entry : entry[generation];
  // On the system Node, take the better-sqlite3 the workspace compiled when it is in the range's
  // major, so its binary can be reused (reuseNativeBuild) instead of compiled again.
  if (name === 'better-sqlite3' && generation === 'oldest') {
    const major = /^\^(\d+)\./.exec(range)?.[1];
    const store = join(ROOT, 'node_modules/.pnpm');
    const built = (existsSync(store) ? readdirSync(store) : [])
      .map((entry) => /^better-sqlite3@(\d+)\.(\d+\.\d+)$/.exec(entry))
      .find((match) => match && match[1] === major);
    if (built) return `${built[1]}.${built[2]}`;
  }
  return range;
}

/**
 * What a generation installs besides the tarballs: the `always` packages, the required peers of
 * the tarballs, what the README blocks import, and the @types packages that go with them.
 */
function neededPackages(packages, programs, generation) {
  const internal = new Set(packages.map((entry) => entry.manifest.name));
  const needed = new Map();
  const need = (name, why) => {
    if (internal.has(name) || needed.has(name)) return;
    const range = versionFor(name, generation);
    if (range === undefined) {
      failures.push(
        `${why} needs "${name}", which is neither a ctx package nor listed in tests/consumer/dependencies.json: add it there`,
      );
      return;
    }
    needed.set(name, range);
    const types = DEPENDENCIES.types[name];
    if (types) need(types, `${name} (its types)`);
  };
  for (const name of DEPENDENCIES.always) need(name, 'the consumer test');
  for (const { manifest } of packages) {
    for (const name of Object.keys(manifest.peerDependencies ?? {})) {
      if (manifest.peerDependenciesMeta?.[name]?.optional !== true)
        need(name, `${manifest.name} (a peer)`);
    }
  }
  for (const program of programs) {
    for (const name of program.imports) {
      if (name.startsWith('.') || name.startsWith('/')) continue;
      need(name, `${program.source} (line ${program.readmeLines[1]})`);
    }
  }
  return needed;
}

/** Turns `blocks/<name>.ts(12,5): error …` into `<README>:<line>: error …`. */
function toReadmeLines(output, programs) {
  return output
    .split('\n')
    .map((line) => {
      const match = /^blocks\/([^(]+)\((\d+),(\d+)\): (.*)$/.exec(line.trim());
      const program = match && programs.find((candidate) => candidate.name === match[1]);
      if (!program) return line;
      const readmeLine = program.readmeLines[Number(match[2]) - 1] ?? '?';
      return `${program.source}:${readmeLine}:${match[3]} ${match[4]}`;
    })
    .join('\n');
}

const COMPILER_OPTIONS = {
  target: 'ES2022',
  // DOM: @google/genai's declarations name fetch and WebSocket types (RequestInfo, HeadersInit,
  // ErrorEvent) that only lib.dom declares; with skipLibCheck false every app needs it.
  lib: ['ES2023', 'DOM'],
  types: ['node'],
  strict: true,
  exactOptionalPropertyTypes: true,
  skipLibCheck: false,
  // Each block is a module of its own, as in an ESM app (blocks without imports included).
  moduleDetection: 'force',
  noEmit: true,
};

async function typecheck(project, resolution, programs, log, prefix) {
  // The NodeNext run also emits the blocks to out/, where the README example is run from.
  const moduleOptions =
    resolution === 'nodenext'
      ? {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          noEmit: false,
          rootDir: 'blocks',
          outDir: 'out',
        }
      : { module: 'Preserve', moduleResolution: 'Bundler' };
  const config = `tsconfig.${resolution}.json`;
  writeFileSync(
    join(project, config),
    `${JSON.stringify({ compilerOptions: { ...COMPILER_OPTIONS, ...moduleOptions }, include: ['blocks/*.ts'] }, null, 2)}\n`,
  );
  const since = Date.now();
  const result = await run(
    `${prefix} tsc ${resolution}`,
    join(project, 'node_modules/.bin/tsc'),
    ['-p', config, '--pretty', 'false'],
    {
      cwd: project,
      log,
      expectCode: null,
    },
  );
  const { ours, thirdParty } = splitDiagnostics(result.text);
  const foreign =
    thirdParty.size > 0
      ? ` (${[...thirdParty].map(([name, count]) => `${name} ${count}`).join(', ')} error(s) inside third-party declarations, not ours: see the log)`
      : '';
  if (result.code === 0 || (ours.length === 0 && thirdParty.size > 0)) {
    say(`${prefix} README blocks typecheck (${resolution}): ok, ${seconds(since)}${foreign}`);
  } else {
    console.log(toReadmeLines(ours.length > 0 ? ours.join('\n') : result.text, programs));
    failures.push(
      `${prefix} README blocks do not typecheck with ${resolution} resolution (log: ${log})`,
    );
  }
}

/**
 * Splits tsc's diagnostics into ours (README blocks, ctx's own declarations, anything without a
 * file) and those located inside another package's declaration files. With skipLibCheck false and
 * exactOptionalPropertyTypes, some frameworks' own .d.ts files do not typecheck (LangChain's, the
 * Agents SDK's): an app that uses them sees those errors with or without ctx, so they are counted
 * and logged but do not fail the test; an error in a README block or in `@ctx/*` always does.
 */
function splitDiagnostics(output) {
  const ours = [];
  const thirdParty = new Map();
  let lastWasOurs = false;
  for (const line of output.split('\n')) {
    const start = /^(\S[^(]*)\(\d+,\d+\): error /.exec(line.trim());
    if (!start) {
      // continuation lines of a diagnostic follow its first line
      if (line.trim() !== '' && lastWasOurs && /^\s/.test(line)) ours.push(line);
      continue;
    }
    const file = start[1] ?? '';
    const inPackage = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
    if (inPackage && !inPackage[1]?.startsWith('@ctx/')) {
      const name = inPackage[1] ?? '?';
      thirdParty.set(name, (thirdParty.get(name) ?? 0) + 1);
      lastWasOurs = false;
    } else {
      ours.push(line);
      lastWasOurs = true;
    }
  }
  return { ours, thirdParty };
}

async function runGeneration(generation, { tarballs, packages, programs, node }) {
  const prefix = `[${generation}]`;
  const project = mkdtempSync(join(work, `${generation}-`));
  const log = join(work, `${generation}.log`);
  const pathEnv = node.bin ? `${node.bin}:${process.env.PATH}` : process.env.PATH;
  const env = cleanEnv({
    PATH: pathEnv,
    ...(node.nodedir ? { npm_config_nodedir: node.nodedir } : {}),
  });
  const { text: version } = await run(`${prefix} node`, 'node', ['--version'], {
    cwd: project,
    env,
    log,
  });

  const needed = neededPackages(packages, programs, generation);
  const dependencies = Object.fromEntries([
    ...tarballs.map((tarball) => [tarball.name, `file:${tarball.path}`]),
    ...needed,
  ]);
  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify(
      {
        name: `ctx-consumer-${generation}`,
        private: true,
        type: 'module',
        dependencies,
        overrides: DEPENDENCIES.overrides?.[generation] ?? {},
      },
      null,
      2,
    )}\n`,
  );
  let since = Date.now();
  let lock;
  try {
    // Install scripts run in a second step, so a native build the workspace already made can be
    // reused instead of compiled again (see reuseNativeBuild).
    await run(`${prefix} npm install`, 'npm', ['install', '--ignore-scripts', '--prefer-offline'], {
      cwd: project,
      env,
      log,
    });
    lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8'));
    const scripted = Object.entries(lock.packages)
      .filter(([, entry]) => entry.hasInstallScript)
      .map(([key, entry]) => ({
        name: key.replace(/^.*node_modules\//, ''),
        version: entry.version,
        key,
      }));
    const rebuild = scripted.filter((entry) => !reuseNativeBuild(entry, project, node));
    if (rebuild.length > 0) {
      const names = [...new Set(rebuild.map((entry) => entry.name))];
      await run(`${prefix} npm rebuild`, 'npm', ['rebuild', ...names], { cwd: project, env, log });
    }
  } catch (error) {
    failures.push(`${prefix} npm install of the tarballs failed: ${error.message}`);
    return;
  }
  const installed = (name) => lock.packages[`node_modules/${name}`]?.version ?? '?';
  say(
    `${prefix} node ${version.trim()}: npm install of ${tarballs.length} tarballs + ${[...needed.keys()].map((name) => `${name}@${installed(name)}`).join(', ')} (${Object.keys(lock.packages).length - 1} packages): ok, ${seconds(since)}`,
  );

  mkdirSync(join(project, 'blocks'));
  for (const program of programs)
    writeFileSync(join(project, 'blocks', program.name), program.code);
  await typecheck(project, 'nodenext', programs, log, prefix);
  await typecheck(project, 'bundler', programs, log, prefix);

  const example = programs.find((program) => program.source === 'README.md');
  if (!example) {
    failures.push(`${prefix} the root README has no TypeScript example to run`);
    return;
  }
  since = Date.now();
  copyFileSync(join(HERE, 'fake-openai.mjs'), join(project, 'fake-openai.mjs'));
  copyFileSync(join(HERE, 'run-example.mjs'), join(project, 'run-example.mjs'));
  try {
    const { text } = await run(
      `${prefix} run the README example`,
      'node',
      ['run-example.mjs', `out/${example.name.replace(/\.ts$/, '.js')}`],
      { cwd: project, env, log },
    );
    say(`${prefix} ${text.trim().split('\n').at(-1)}: ok, ${seconds(since)}`);
  } catch (error) {
    failures.push(`${prefix} ${error.message}`);
  }
}

/**
 * better-sqlite3 has no prebuilt binary for every platform and compiles from source (about a
 * minute on two cores). On the system Node, the workspace's own install already compiled it: when
 * the consumer project got the same version, its binary is copied instead of building it again.
 * Returns false when the package must be rebuilt.
 */
function reuseNativeBuild(entry, project, node) {
  if (entry.name !== 'better-sqlite3' || node.bin !== undefined) return false;
  const built = join(
    ROOT,
    'node_modules/.pnpm',
    `better-sqlite3@${entry.version}`,
    'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
  );
  if (!existsSync(built)) return false;
  const target = join(project, entry.key, 'build/Release');
  mkdirSync(target, { recursive: true });
  copyFileSync(built, join(target, 'better_sqlite3.node'));
  return true;
}

/** Installs @ctx/cli with only what it needs and checks it asks for the store a URL needs. */
async function checkCliAlone({ tarballs, packages, node }) {
  const prefix = '[cli]';
  const project = mkdtempSync(join(work, 'cli-'));
  const log = join(work, 'cli.log');
  const env = cleanEnv({
    PATH: node.bin ? `${node.bin}:${process.env.PATH}` : process.env.PATH,
    ...(node.nodedir ? { npm_config_nodedir: node.nodedir } : {}),
  });
  const byName = new Map(packages.map((entry) => [entry.manifest.name, entry.manifest]));
  const closure = new Set();
  const visit = (name) => {
    const manifest = byName.get(name);
    if (!manifest || closure.has(name)) return;
    closure.add(name);
    for (const dependency of Object.keys(manifest.dependencies ?? {})) visit(dependency);
    for (const peer of Object.keys(manifest.peerDependencies ?? {})) {
      if (manifest.peerDependenciesMeta?.[peer]?.optional !== true) visit(peer);
    }
  };
  visit('@ctx/cli');
  const dependencies = Object.fromEntries(
    tarballs
      .filter((tarball) => closure.has(tarball.name))
      .map((tarball) => [tarball.name, `file:${tarball.path}`]),
  );
  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'ctx-consumer-cli', private: true, dependencies }, null, 2)}\n`,
  );
  const since = Date.now();
  try {
    await run(`${prefix} npm install`, 'npm', ['install', '--prefer-offline'], {
      cwd: project,
      env,
      log,
    });
    const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8'));
    const count = Object.keys(lock.packages).filter(
      (key) => key !== '' && !lock.packages[key].link,
    ).length;
    const { text: size } = await run(`${prefix} du`, 'du', ['-sk', 'node_modules'], {
      cwd: project,
      env,
      log,
    });
    const tarball = tarballs.find((entry) => entry.name === '@ctx/cli');
    say(
      `${prefix} @ctx/cli tarball ${(statSync(tarball.path).size / 1024).toFixed(1)} kB; installed with ${[...closure].filter((name) => name !== '@ctx/cli').join(', ')}: ${count} packages, ${(Number.parseInt(size, 10) / 1024).toFixed(1)} MB in node_modules`,
    );
    const npx = (args, expectCode) =>
      run(`${prefix} npx @ctx/cli ${args.join(' ')}`, 'npx', ['--no', '@ctx/cli', ...args], {
        cwd: project,
        env,
        log,
        expectCode,
      });
    await npx(['list', '--store', 'memory:'], 0);
    const missing = await npx(['migrate', '--store', 'sqlite:./ctx.db'], 1);
    for (const name of ['@ctx/store-sqlite', 'better-sqlite3']) {
      if (!missing.text.includes(name)) {
        failures.push(
          `${prefix} ctx migrate on a sqlite: URL without the SQLite store does not name ${name}: ${missing.text.trim()}`,
        );
      }
    }
    say(
      `${prefix} npx @ctx/cli without the SQLite store: "${missing.text.trim().slice(0, 160)}…": ok, ${seconds(since)}`,
    );
  } catch (error) {
    failures.push(`${prefix} ${error.message}`);
  }
}

async function main() {
  const packages = publishedPackages();
  const setupLog = join(work, 'setup.log');
  let since = Date.now();
  if (process.env.CTX_CONSUMER_SKIP_BUILD !== '1') {
    await run(
      'build',
      PNPM[0],
      [
        ...PNPM.slice(1),
        'turbo',
        'run',
        'build',
        ...packages.map((entry) => `--filter=${entry.manifest.name}`),
      ],
      {
        cwd: ROOT,
        env: cleanEnv({ TURBO_TELEMETRY_DISABLED: '1' }),
        log: setupLog,
      },
    );
  }
  const tarballDir = join(work, 'tarballs');
  mkdirSync(tarballDir);
  const tarballs = await inBatches(packages, 4, async ({ folder, manifest }) => {
    const { text } = await run(
      `pack ${manifest.name}`,
      PNPM[0],
      [...PNPM.slice(1), 'pack', '--pack-destination', tarballDir],
      {
        cwd: join(ROOT, 'packages', folder),
        log: setupLog,
      },
    );
    const path = text.trim().split('\n').at(-1)?.trim() ?? '';
    return {
      name: manifest.name,
      folder,
      path: path.startsWith('/') ? path : join(tarballDir, basename(path)),
    };
  });
  say(
    `built and packed ${tarballs.length} packages (${tarballs.map((tarball) => tarball.name).join(', ')}): ${seconds(since)}`,
  );

  since = Date.now();
  const internal = new Set(packages.map((entry) => entry.manifest.name));
  for (const tarball of tarballs) {
    const unpacked = join(work, 'unpacked', tarball.folder);
    mkdirSync(unpacked, { recursive: true });
    await run(`unpack ${tarball.name}`, 'tar', ['-xzf', tarball.path, '-C', unpacked], {
      cwd: work,
      log: setupLog,
    });
    for (const problem of checkTarball(join(unpacked, 'package'), {
      folder: tarball.folder,
      internal,
    })) {
      failures.push(`${tarball.name} tarball: ${problem}`);
    }
  }
  say(
    `tarball checks: ${failures.length === 0 ? 'ok' : `${failures.length} problems`}, ${seconds(since)}`,
  );

  const readmes = ['README.md', ...packages.map((entry) => `packages/${entry.folder}/README.md`)];
  const programs = readmes.flatMap((source) =>
    readmePrograms(readFileSync(join(ROOT, source), 'utf8'), source),
  );
  for (const program of programs) {
    for (const specifier of program.imports.filter(
      (name) => name.startsWith('.') || name.startsWith('/'),
    )) {
      failures.push(
        `${program.source}:${program.readmeLines[1]}: imports "${specifier}"; a README block must stand alone`,
      );
    }
  }
  say(`${programs.length} TypeScript programs from ${readmes.length} READMEs`);

  // The system Node's native builds use npm_config_nodedir from the environment (the script sets it).
  const generations = [['oldest', { bin: undefined, nodedir: undefined }]];
  const node24 = process.env.CTX_CONSUMER_NODE24;
  if (node24) {
    generations.push(['newest', { bin: join(node24, 'bin'), nodedir: node24 }]);
  } else {
    failures.push('CTX_CONSUMER_NODE24 is not set: the newest generation (Node 24) did not run');
  }
  const shared = { tarballs, packages, programs };
  const jobs = generations.map(
    ([generation, node]) =>
      () =>
        runGeneration(generation, { ...shared, node }),
  );
  jobs.push(() => checkCliAlone({ ...shared, node: generations.at(-1)[1] }));
  if (process.env.CTX_CONSUMER_SERIAL === '1') {
    for (const job of jobs) await job();
  } else {
    await Promise.all(jobs.map((job) => job()));
  }
}

try {
  await main();
} catch (error) {
  failures.push(error instanceof Error ? error.message : String(error));
}
const keep = failures.length > 0 || process.env.CTX_CONSUMER_KEEP === '1';
if (failures.length > 0) {
  console.log(`consumer: FAILED after ${seconds(started)}:`);
  for (const failure of failures) console.log(`  - ${failure}`);
}
if (keep) say(`work folder (tarballs, projects, logs): ${work}`);
else rmSync(work, { recursive: true, force: true });
if (failures.length === 0) say(`all green in ${seconds(started)}`);
process.exitCode = failures.length > 0 ? 1 : 0;

// The packaging mistakes a user would meet in a published tarball, checked on the unpacked
// `package/` folder of `pnpm pack`. Each check names what is wrong, so a failure reads as a fix.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Every file under `root`, as paths relative to it with `/` separators. */
function listFiles(root, folder = root) {
  return readdirSync(folder).flatMap((entry) => {
    const path = join(folder, entry);
    return statSync(path).isDirectory() ? listFiles(root, path) : [relative(root, path)];
  });
}

/** The `exports` targets of a manifest (strings anywhere in the map). */
function exportTargets(exports) {
  if (typeof exports === 'string') return [exports];
  if (exports === null || typeof exports !== 'object') return [];
  return Object.values(exports).flatMap(exportTargets);
}

/**
 * Checks one unpacked tarball.
 * @param {string} root the unpacked `package/` folder
 * @param {{ folder: string, internal: Set<string> }} expected `folder`: the package's folder under
 *   `packages/`; `internal`: the names of every published package of the workspace
 * @returns {string[]} the problems found, empty when the tarball is fine
 */
export function checkTarball(root, expected) {
  const problems = [];
  const files = listFiles(root);
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

  if (!files.includes('LICENSE')) problems.push('no LICENSE file');
  if (!files.includes('README.md')) problems.push('no README.md');
  if (manifest.license !== 'MIT') problems.push(`license is ${manifest.license}, expected MIT`);
  const repository = manifest.repository;
  if (typeof repository !== 'object' || repository === null || typeof repository.url !== 'string') {
    problems.push('no repository { type, url, directory }');
  } else if (repository.directory !== `packages/${expected.folder}`) {
    problems.push(
      `repository.directory is ${repository.directory}, expected packages/${expected.folder}`,
    );
  }
  if (typeof manifest.homepage !== 'string') problems.push('no homepage');
  if (typeof manifest.bugs?.url !== 'string' && typeof manifest.bugs !== 'string') {
    problems.push('no bugs');
  }
  if (!Array.isArray(manifest.keywords) || manifest.keywords.length === 0) {
    problems.push('no keywords');
  }
  if (manifest.engines?.node !== '>=20.19') {
    problems.push(`engines.node is ${manifest.engines?.node}, expected >=20.19`);
  }

  for (const section of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [name, range] of Object.entries(manifest[section] ?? {})) {
      if (String(range).startsWith('workspace:')) {
        problems.push(`${section}.${name} is "${range}" (pnpm did not replace it)`);
      } else if (expected.internal.has(name) && !/^[\^~]|\|\||>=/.test(String(range))) {
        problems.push(
          `${section}.${name} is pinned to "${range}": another ctx package would install a second copy of it (use workspace:^)`,
        );
      }
    }
  }

  for (const target of exportTargets(manifest.exports)) {
    if (!existsSync(resolve(root, target)))
      problems.push(`exports target ${target} is not shipped`);
  }
  for (const [name, target] of Object.entries(
    typeof manifest.bin === 'string' ? { bin: manifest.bin } : (manifest.bin ?? {}),
  )) {
    if (!existsSync(resolve(root, target))) problems.push(`bin ${name} (${target}) is not shipped`);
  }

  const broken = [];
  for (const map of files.filter((file) => file.endsWith('.map'))) {
    const { sources = [], sourceRoot = '' } = JSON.parse(readFileSync(join(root, map), 'utf8'));
    const missing = sources.find((source) => {
      const shipped = resolve(root, dirname(map), sourceRoot, source);
      return !shipped.startsWith(`${resolve(root)}/`) || !existsSync(shipped);
    });
    if (missing !== undefined) broken.push(`${map} → ${missing}`);
  }
  if (broken.length > 0) {
    problems.push(
      `${broken.length} source maps point to files that are not in the tarball (e.g. ${broken[0]}): ship them or drop the maps`,
    );
  }
  return problems;
}

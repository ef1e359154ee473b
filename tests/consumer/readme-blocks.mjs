// Reads the TypeScript code blocks of a README into files a consumer project can typecheck.
//
// Conventions (HTML comments, invisible on npm and GitHub), on the last non-empty line before a
// block's opening fence:
//   <!-- consumer:continue -->  the block continues the previous TypeScript block of the same
//                               README (same file), e.g. "later, on shutdown" after a setup block
//   <!-- consumer:skip -->      not checked; for pseudo-code only, use sparingly
import { builtinModules } from 'node:module';

const OPENING = /^```(ts|typescript)\s*$/;
const MARKER = /^<!--\s*consumer:(continue|skip)\s*-->$/;

/**
 * @typedef {object} ReadmeProgram One file to typecheck.
 * @property {string} name its file name
 * @property {string} source the README's path, for messages
 * @property {string} code the TypeScript text
 * @property {number[]} readmeLines for each line of `code` (0-based), its README line (1-based)
 * @property {string[]} imports the packages it imports (see {@link importedPackages})
 */

/**
 * The TypeScript programs of one README, in order; each is one block or a block plus the blocks
 * that continue it.
 * @param {string} text the README's text
 * @param {string} source the README's path, for messages and file names
 * @returns {ReadmeProgram[]}
 */
export function readmePrograms(text, source) {
  const lines = text.split('\n');
  /** @type {ReadmeProgram[]} */
  const programs = [];
  let index = 0;
  while (index < lines.length) {
    const line = lines[index] ?? '';
    const fence = /^(`{3,}|~{3,})/.exec(line);
    if (!fence) {
      index += 1;
      continue;
    }
    const close = fence[1] ?? '```';
    const start = index;
    index += 1;
    while (index < lines.length && !(lines[index] ?? '').startsWith(close)) index += 1;
    const body = lines.slice(start + 1, index).join('\n');
    index += 1;
    if (!OPENING.test(line)) continue;
    let previous = start - 1;
    while (previous >= 0 && (lines[previous] ?? '').trim() === '') previous -= 1;
    const marker = MARKER.exec((lines[previous] ?? '').trim())?.[1];
    if (marker === 'skip') continue;
    // A header line naming the block's place, then the block, line for line.
    const header = `// ${source}, line ${start + 2}`;
    const bodyLines = lines.slice(start + 1, index - 1);
    const readmeLines = [start + 1, ...bodyLines.map((_, offset) => start + 2 + offset)];
    const last = programs.at(-1);
    if (marker === 'continue') {
      if (!last)
        throw new Error(`${source}:${start + 1}: consumer:continue before any TypeScript block`);
      last.code += `${header}\n${body}\n`;
      last.readmeLines.push(...readmeLines);
      continue;
    }
    const slug = source
      .replace(/README\.md$/, '')
      .replace(/[^a-z0-9]+/gi, '-')
      .replace(/^-|-$/g, '');
    programs.push({
      name: `${slug || 'root'}-line-${start + 2}.ts`,
      source,
      code: `${header}\n${body}\n`,
      readmeLines,
      imports: [],
    });
  }
  for (const program of programs) program.imports = importedPackages(program.code);
  return programs;
}

const BUILTINS = new Set(builtinModules);

/**
 * The packages a program imports (bare specifiers reduced to the package name), without Node's
 * built-in modules. Relative specifiers are returned as they are, so the caller can refuse them:
 * a README block must stand alone, as a reader pastes it into an app.
 * @param {string} code
 * @returns {string[]}
 */
export function importedPackages(code) {
  const found = new Set();
  const patterns = [
    /^\s*(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of code.matchAll(pattern)) {
      const specifier = match[1] ?? '';
      if (specifier.startsWith('node:') || BUILTINS.has(specifier.split('/')[0] ?? '')) continue;
      if (specifier.startsWith('.') || specifier.startsWith('/')) {
        found.add(specifier);
        continue;
      }
      const parts = specifier.split('/');
      found.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier));
    }
  }
  return [...found].sort();
}

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { BenchResults } from '../src/bench.js';
import { formatMarkdown } from '../src/markdown.js';
import { formatReport } from '../src/report.js';

const read = (name: string) => readFileSync(new URL(`../results/${name}`, import.meta.url), 'utf8');
const saved = JSON.parse(read('latest.json')) as BenchResults;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// The cells of every Markdown table row (header rows included, alignment rows left out).
function markdownRows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| --- |'))
    .map((line) => line.slice(2, -2).split(' | '));
}

describe('tables rendered from the saved run', () => {
  it('results/latest.md is the Markdown of results/latest.json (refresh: node dist/main.js --render results/latest.json)', () => {
    expect(formatMarkdown(saved)).toBe(read('latest.md'));
  });

  it('prints every Markdown table row in the terminal too, without the marks', () => {
    const report = formatReport(saved);
    const rows = markdownRows(formatMarkdown(saved));
    expect(rows.length).toBeGreaterThan(40);
    for (const cells of rows) {
      const plain = cells.map((cell) => cell.replace(/`|\*\*/g, ''));
      const line = new RegExp(`^${plain.map(escapeRegExp).join(' {2,}')}$`, 'm');
      expect(report, plain.join(' | ')).toMatch(line);
    }
  });
});

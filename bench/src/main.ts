import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DATABASE_STORES, type DatabaseStore } from './backends.js';
import { type BenchResults, runBenchmarks, SECTIONS, type Section } from './bench.js';
import { formatMarkdown } from './markdown.js';
import { formatReport } from './report.js';

const USAGE = `Usage: node dist/main.js [--quick] [--stores sqlite,postgres,redis,mysql] [--sections ${SECTIONS.join(',')}] [--out file.json]
       node dist/main.js --render results/latest.json

  --quick      fewer, shorter rounds (smoke test); writes results/quick.json unless --out is given
  --stores     database stores to run (default: all four)
  --sections   sections to run (default: all)
  --out        where to write the JSON (default: results/latest.json, or results/quick.json with
               --quick); the same tables in Markdown go next to it (.md)
  --render     measure nothing: print the tables of a saved run and rewrite its Markdown (.md)

Services: CTX_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test),
          CTX_REDIS_URL (default redis://127.0.0.1:6379),
          CTX_MYSQL_URL (default mysql://root@127.0.0.1:3306/test).`;

function parseList<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  flag: string,
) {
  if (value === undefined) return undefined;
  const items = value.split(',').map((item) => item.trim());
  for (const item of items) {
    if (!allowed.includes(item as T)) {
      throw new Error(`Unknown ${flag} value "${item}": expected ${allowed.join(', ')}`);
    }
  }
  return items as T[];
}

/** Writes the Markdown tables next to the JSON (`latest.json` → `latest.md`); returns their path. */
function writeMarkdown(jsonFile: string, results: BenchResults): string {
  const markdown = `${jsonFile.replace(/\.json$/, '')}.md`;
  writeFileSync(markdown, formatMarkdown(results));
  return markdown;
}

/** Prints the tables of a saved run and rewrites its Markdown, for a change to the tables. */
function renderSaved(jsonFile: string): void {
  const results = JSON.parse(readFileSync(jsonFile, 'utf8')) as BenchResults;
  console.log(formatReport(results));
  console.log(`\nMarkdown tables written to ${writeMarkdown(jsonFile, results)}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      stores: { type: 'string' },
      sections: { type: 'string' },
      out: { type: 'string' },
      render: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.render !== undefined) {
    if (values.quick || values.stores || values.sections || values.out) {
      throw new Error(
        '--render prints a saved run: it takes no --quick, --stores, --sections or --out',
      );
    }
    renderSaved(resolve(values.render));
    return;
  }
  const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const out = resolve(
    values.out ?? resolve(packageRoot, 'results', values.quick ? 'quick.json' : 'latest.json'),
  );
  const stores = parseList<DatabaseStore>(values.stores, DATABASE_STORES, '--stores');
  const sections = parseList<Section>(values.sections, SECTIONS, '--sections');
  const results = await runBenchmarks({
    quick: values.quick,
    ...(stores === undefined ? {} : { stores }),
    ...(sections === undefined ? {} : { sections }),
  });
  console.log(formatReport(results));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nJSON written to ${out}, Markdown tables to ${writeMarkdown(out, results)}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});

export {
  CLI_COMMANDS,
  type CliIo,
  type CliOutput,
  EXIT_CODES,
  runCli,
} from './cli.js';
export { formatListTable, formatTimestamp } from './cli-format.js';
export type { WorkerRound } from './worker.js';

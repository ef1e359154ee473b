#!/usr/bin/env node
import { runChat } from './chat.js';

process.exitCode = await runChat({
  argv: process.argv.slice(2),
  env: process.env,
  input: process.stdin,
  output: process.stdout,
  errorOutput: process.stderr,
});

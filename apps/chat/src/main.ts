#!/usr/bin/env node
import { runChat } from './chat.js';
import { runMain } from './run-main.js';

await runMain(runChat);

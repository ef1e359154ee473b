#!/usr/bin/env node
import { runMain } from 'chat/run-main';
import { runChat } from './chat.js';

await runMain(runChat);

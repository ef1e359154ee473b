import { describeContextExtractor } from '../src/index.js';
import { createScriptedProviderHarness } from './scripted-harness.js';

describeContextExtractor(createScriptedProviderHarness());

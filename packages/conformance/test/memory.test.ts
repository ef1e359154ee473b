import { createMemoryRepository } from '@ctx/core';
import { describeContextRepository } from '../src/index.js';

// The reference repository of core. Each createRepository call is a separate in-process map, so
// there is no independent second connection to give; the TTL and history groups run.
describeContextRepository({
  name: 'memory (core reference)',
  createRepository: (options) => createMemoryRepository(options),
  capabilities: { ttl: true, history: true, turnLog: true, fields: true },
});

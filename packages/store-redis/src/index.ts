export { type RedisClientOptions, redisClientOptions } from './redis-connection.js';
export type { RedisSessionDocument } from './redis-document.js';
export { isRedisOutage } from './redis-errors.js';
export {
  createRedisKeyLayout,
  DEFAULT_REDIS_KEY_PREFIX,
  encodeIndexMember,
  type RedisKeyLayout,
} from './redis-keys.js';
export {
  createRedisRepository,
  type RedisRepository,
  type RedisRepositoryClientOptions,
  type RedisRepositoryCommonOptions,
  type RedisRepositoryOptions,
  type RedisRepositoryUrlOptions,
} from './redis-repository.js';

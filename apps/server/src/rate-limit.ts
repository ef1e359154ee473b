/** Options of {@link createRateLimiter}. */
export interface RateLimitOptions {
  /** Requests each key may make per minute, on average. */
  perMinute: number;
  /** Requests a key may make at once after being idle. @default perMinute */
  burst?: number;
  /** The clock, in milliseconds. @default Date.now */
  now?: () => number;
  /** Keys kept at most; idle (full) buckets are forgotten first. @default 10000 */
  maxKeys?: number;
}

/** The answer of {@link RateLimiter.take}. */
export type RateLimitDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** Token buckets, one per key (a principal, or a client address for unauthenticated callers). */
export interface RateLimiter {
  /** Takes one request from `key`'s bucket; refused when it is empty. */
  take(key: string): RateLimitDecision;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/**
 * In-memory token buckets: each key holds up to `burst` requests and regains `perMinute` per
 * minute. Per process: N instances behind a balancer allow up to N times the rate in total.
 *
 * @example
 * ```ts
 * const limiter = createRateLimiter({ perMinute: 600 });
 * const decision = limiter.take('user:alice');
 * if (!decision.allowed) answer429(decision.retryAfterSeconds);
 * ```
 */
export function createRateLimiter(options: RateLimitOptions): RateLimiter {
  const capacity = Math.max(1, options.burst ?? options.perMinute);
  const perMs = options.perMinute / 60_000;
  const now = options.now ?? Date.now;
  const maxKeys = options.maxKeys ?? 10_000;
  const buckets = new Map<string, Bucket>();

  const refill = (bucket: Bucket, time: number) => {
    bucket.tokens = Math.min(capacity, bucket.tokens + (time - bucket.updatedAt) * perMs);
    bucket.updatedAt = time;
  };
  const forgetIdle = (time: number) => {
    for (const [key, bucket] of buckets) {
      refill(bucket, time);
      if (bucket.tokens >= capacity) buckets.delete(key);
    }
    // Still full of busy keys: drop the oldest ones (Map keeps insertion order).
    for (const key of buckets.keys()) {
      if (buckets.size < maxKeys) break;
      buckets.delete(key);
    }
  };

  return {
    take(key) {
      const time = now();
      let bucket = buckets.get(key);
      if (!bucket) {
        if (buckets.size >= maxKeys) forgetIdle(time);
        bucket = { tokens: capacity, updatedAt: time };
        buckets.set(key, bucket);
      }
      refill(bucket, time);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { allowed: true };
      }
      const waitMs = (1 - bucket.tokens) / perMs;
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
    },
  };
}

import type { LatencyStats } from './stats.js';

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', {
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});

/** `12,345` */
export const formatInteger = (value: number) => integer.format(value);
/** `12.3` */
export const formatMicros = (value: number) => decimal.format(value);
/** `0.91×` */
export const formatRatio = (value: number) => `${value.toFixed(2)}×`;
/** A large factor: `207×`, `19.9×`. */
export const formatFactor = (value: number) =>
  `${value >= 100 ? value.toFixed(0) : value.toFixed(1)}×`;
/** The three cells of a measurement: ops/s, p50, p99. */
export const formatStats = (stats: LatencyStats) => [
  formatInteger(stats.opsPerSec),
  formatMicros(stats.p50Us),
  formatMicros(stats.p99Us),
];

/**
 * A one-line chart of a series in Unicode block characters, e.g. `▁▂▄█` for a queue that grows.
 */
const BARS = '▁▂▃▄▅▆▇█';

/**
 * The series as block characters scaled between its minimum and maximum (a flat series is all
 * `▁`). Non-finite values print as a space.
 */
export function sparkline(values: readonly number[]): string {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return ' '.repeat(values.length);
  const min = Math.min(...finite);
  const span = Math.max(...finite) - min;
  return values
    .map((v) => {
      if (!Number.isFinite(v)) return ' ';
      if (span === 0) return BARS[0];
      return BARS[Math.round(((v - min) / span) * (BARS.length - 1))];
    })
    .join('');
}

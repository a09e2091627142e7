/**
 * The default price table. Prices are data: pass your own (negotiated rates, other regions,
 * other providers) through `CostOptimizer`'s `prices` option; yours are merged over these.
 */

/** Price of one LLM model in US dollars per million tokens. */
export interface ModelPrice {
  /** Dollars per 1,000,000 input (prompt) tokens. */
  input: number;
  /** Dollars per 1,000,000 output (completion) tokens. */
  output: number;
  /** Dollars per 1,000,000 cached input tokens; defaults to `input` when absent. */
  cachedInput?: number;
}

/** A price table: instance types in dollars per hour, models in dollars per million tokens. */
export interface PriceTable {
  /** On-demand dollars per instance-hour, by instance type. */
  instances: Readonly<Record<string, number>>;
  /** Dollars per million tokens, by model name (lower case). */
  models: Readonly<Record<string, ModelPrice>>;
}

/**
 * The date the default table was taken from the providers' public list prices. Prices change:
 * check them, and pass your own for anything that matters.
 */
export const DEFAULT_PRICES_AS_OF = '2025-08-15';

/**
 * A small default table, list prices as of {@link DEFAULT_PRICES_AS_OF}: AWS EC2 on-demand Linux
 * in us-east-1 for the seed's instance types (plus m5.xlarge), OpenAI and Anthropic standard
 * (non-batch) API prices per million tokens.
 */
export const DEFAULT_PRICES: Readonly<PriceTable> = Object.freeze({
  instances: Object.freeze({
    'c5.xlarge': 0.17,
    'r5.xlarge': 0.252,
    't3.xlarge': 0.1664,
    'm5.xlarge': 0.192,
  }),
  models: Object.freeze({
    'gpt-5': Object.freeze({ input: 1.25, output: 10, cachedInput: 0.125 }),
    'gpt-5-mini': Object.freeze({ input: 0.25, output: 2, cachedInput: 0.025 }),
    'gpt-5-nano': Object.freeze({ input: 0.05, output: 0.4, cachedInput: 0.005 }),
    'gpt-4.1': Object.freeze({ input: 2, output: 8, cachedInput: 0.5 }),
    'gpt-4.1-mini': Object.freeze({ input: 0.4, output: 1.6, cachedInput: 0.1 }),
    'gpt-4.1-nano': Object.freeze({ input: 0.1, output: 0.4, cachedInput: 0.025 }),
    'gpt-4o': Object.freeze({ input: 2.5, output: 10, cachedInput: 1.25 }),
    'gpt-4o-mini': Object.freeze({ input: 0.15, output: 0.6, cachedInput: 0.075 }),
    o3: Object.freeze({ input: 2, output: 8, cachedInput: 0.5 }),
    'o4-mini': Object.freeze({ input: 1.1, output: 4.4, cachedInput: 0.275 }),
    'o3-mini': Object.freeze({ input: 1.1, output: 4.4, cachedInput: 0.55 }),
    'gpt-4-turbo': Object.freeze({ input: 10, output: 30 }),
    'gpt-3.5-turbo': Object.freeze({ input: 0.5, output: 1.5 }),
    'claude-opus-4-1': Object.freeze({ input: 15, output: 75, cachedInput: 1.5 }),
    'claude-sonnet-4': Object.freeze({ input: 3, output: 15, cachedInput: 0.3 }),
    'claude-opus-4': Object.freeze({ input: 15, output: 75, cachedInput: 1.5 }),
    'claude-3-7-sonnet': Object.freeze({ input: 3, output: 15, cachedInput: 0.3 }),
    'claude-3-5-sonnet': Object.freeze({ input: 3, output: 15, cachedInput: 0.3 }),
    'claude-3-5-haiku': Object.freeze({ input: 0.8, output: 4, cachedInput: 0.08 }),
    'claude-3-opus': Object.freeze({ input: 15, output: 75, cachedInput: 1.5 }),
    'claude-3-haiku': Object.freeze({ input: 0.25, output: 1.25, cachedInput: 0.03 }),
  }),
});

// Dated snapshots of a listed model share its price: gpt-4o-2024-08-06, claude-sonnet-4-20250514.
const SNAPSHOT_SUFFIX = /^-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$/;

/**
 * The price of `model` in `models`: an exact (case-insensitive) match, or a listed model followed
 * by a date snapshot suffix. Anything else is unknown: a model that only shares a prefix
 * (`gpt-5-pro` vs `gpt-5`) can cost ten times more, so it is never guessed.
 */
export function findModelPrice(
  models: Readonly<Record<string, ModelPrice>>,
  model: string,
): ModelPrice | undefined {
  if (typeof model !== 'string' || typeof models !== 'object' || models === null) return undefined;
  // Own properties only: `constructor`, `__proto__` or `toString` are unknown models, never a
  // function or Object.prototype read as a price.
  const own = (k: string) => (Object.hasOwn(models, k) ? models[k] : undefined);
  const name = model.toLowerCase();
  const exact = own(name) ?? own(model);
  if (exact) return exact;
  let best: string | undefined;
  for (const k of Object.keys(models)) {
    const lk = k.toLowerCase();
    if (name.startsWith(lk) && SNAPSHOT_SUFFIX.test(name.slice(lk.length))) {
      if (!best || lk.length > best.length) best = k;
    }
  }
  return best === undefined ? undefined : own(best);
}

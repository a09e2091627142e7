import { type BackendOptions, type ResolvedBackend, resolveBackend } from '../core/backend.js';
import type { RedisConnectionOptions, RedisInput } from '../core/connection.js';
import {
  BudgetExceededError,
  SerializationError,
  ValidationError,
  describeValue,
} from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { validateId } from '../core/keys.js';
import {
  type CounterHandle,
  type GaugeHandle,
  type MetricsSink,
  noopMetrics,
} from '../core/metrics.js';
import {
  assertFunction,
  assertNumber,
  assertObject,
  assertString,
  optionalNumber,
} from '../core/validate.js';
import { MAX_DURATION_SECONDS } from '../core/timers.js';
import { assertQuantity } from './util.js';
import { MemorySpendStore } from './memory-store.js';
import { DEFAULT_PRICES, type ModelPrice, type PriceTable, findModelPrice } from './prices.js';
import { RedisSpendStore } from './redis-store.js';
import {
  type DurabilityOptions,
  durabilityNeedsRedis,
  resolveDurability,
} from '../core/durability.js';
import type { SpendStore } from './spend-store.js';

/** The seed's `hourly_budget`: $100 per hour. */
export const DEFAULT_HOURLY_BUDGET = 100;

/** The seed's scale-up CPU rule: `cpu_usage > 70` (percent). */
export const DEFAULT_SCALE_UP_CPU_PERCENT = 70;

/** The seed's `optimize_instance_types` mapping, frozen. Extend it with `instanceTypes`. */
export const DEFAULT_INSTANCE_TYPES: Readonly<Record<string, string>> = Object.freeze({
  cpu_intensive: 'c5.xlarge',
  memory_intensive: 'r5.xlarge',
  general: 't3.xlarge',
});

const HOUR_MS = 3_600_000;

/**
 * The largest dollar amount one call may record or one estimate may reach: 1e12 (a trillion).
 * Larger amounts are a `ValidationError`, so a total can never overflow to Infinity or NaN.
 */
export const MAX_SPEND_AMOUNT = 1e12;
const MAX_AMOUNT = MAX_SPEND_AMOUNT;
// Token counts: integers >= 0, at most 2^53-1 (beyond it they are not exact integers).
const TOKEN_COUNT = { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER } as const;

/** Options of {@link CostOptimizer}. */
export interface CostOptimizerOptions extends BackendOptions<SpendStore> {
  /**
   * Spend allowed per clock hour (UTC), in dollars. The seed's `hourly_budget`.
   * @default 100
   */
  hourlyBudget?: number;
  /**
   * Share spend across processes: a `redis://` URL, an ioredis `Redis`/`Cluster`, or
   * `{ nodes: [...] }`. Without it spend is kept in this process's memory.
   */
  redis?: RedisInput;
  /**
   * A custom {@link SpendStore}. Never closed by us; cannot be combined with `redis` (`backend`
   * is an alias).
   */
  store?: SpendStore;
  /** Redis key prefix. @default 'azscale:cost:' */
  prefix?: string;
  /** Budget name: optimizers sharing a Redis and a name share one total. @default 'default' */
  name?: string;
  /**
   * Connection options (seconds) for a Redis this optimizer creates; `redisOptions` and the
   * top-level `connectTimeout`/`commandTimeout` are accepted as aliases.
   * @default {}
   */
  connection?: RedisConnectionOptions;
  /**
   * Acknowledge recorded spend only once `replicas` Redis replicas have it (`WAIT`; `timeout` in
   * seconds); otherwise `recordSpend` fails with `DurabilityError` (the increment may or may not
   * survive a failover). Needs `redis`. See docs/operations.md.
   * @default undefined (off: acknowledged once the primary has it)
   */
  durability?: DurabilityOptions;
  /**
   * Prices merged over {@link DEFAULT_PRICES}: `instances` in dollars per hour, `models` in
   * dollars per million tokens.
   * @example { models: { 'my-finetune': { input: 3, output: 12 } } }
   */
  prices?: {
    /** Instance type -> dollars per hour. */
    instances?: Record<string, number>;
    /** Model name -> dollars per million input and output tokens. */
    models?: Record<string, ModelPrice>;
  };
  /**
   * Workload type -> instance type, merged over the seed's {@link DEFAULT_INSTANCE_TYPES}.
   * @example { gpu_intensive: 'g5.xlarge' }
   */
  instanceTypes?: Record<string, string>;
  /**
   * `shouldScaleUp` says yes only above this CPU usage (percent, 0..100).
   * @default 70
   */
  scaleUpCpuPercent?: number;
  /**
   * Seconds an hour bucket is kept after its last write (so the last day's spend can be read).
   * @default 90000 (25 hours)
   */
  bucketTtl?: number;
  /** Clock in epoch milliseconds; decides the hour bucket. @default Date.now */
  now?: () => number;
  /**
   * Where to report `scaling_spend_dollars_total`, `scaling_llm_tokens_total{kind}`,
   * `scaling_budget_exceeded_total` and the `scaling_spend_hour_dollars` gauge.
   * @default noopMetrics
   */
  metrics?: MetricsSink;
}

/** One clock hour of {@link CostOptimizer.hourlySpend}. */
export interface HourlySpend {
  /** Start of the hour (UTC), epoch milliseconds. */
  hourStartMs: number;
  /** Dollars spent in that hour, across every instance sharing the store. */
  total: number;
}

/** Payload of the `budgetExceeded` event. */
export interface BudgetExceededEvent {
  /** Which call found the budget exceeded. */
  source: 'recordSpend' | 'shouldScaleUp' | 'desiredReplicas' | 'guard';
  /** Dollars spent in the current hour. */
  spent: number;
  /** Spend the refused action would have led to (equals `spent` for `recordSpend`). */
  projected: number;
  /** The hourly budget in dollars. */
  budget: number;
  /** Start of the current hour bucket, epoch milliseconds. */
  hourStartMs: number;
}

/** Payload of the `spend` event. */
export interface SpendEvent {
  /** Dollars added. */
  amount: number;
  /** Category, when one was given. */
  category: string | undefined;
  /** The hour's total after the addition (across every instance sharing the store). */
  total: number;
  /** Start of the hour bucket, epoch milliseconds. */
  hourStartMs: number;
}

/** Events of {@link CostOptimizer}. */
export type CostOptimizerEvents = {
  /** A scale-up or guarded call was refused, or recorded spend crossed the budget. */
  budgetExceeded: (event: BudgetExceededEvent) => void;
  /** Spend was recorded. */
  spend: (event: SpendEvent) => void;
};

/** Arguments of {@link CostOptimizer.recordLLMUsage}. */
export interface LLMUsage {
  /** Model name, looked up in the price table (case-insensitive; dated snapshots match). */
  model: string;
  /** Prompt tokens billed at the full input price. */
  inputTokens: number;
  /** Completion tokens. */
  outputTokens: number;
  /** Prompt tokens served from the provider's cache (billed at `cachedInput`). @default 0 */
  cachedInputTokens?: number;
  /** Spend category. @default 'llm' */
  category?: string;
}

/** Arguments of {@link CostOptimizer.shouldScaleUp} (the seed's parameters). */
export interface ShouldScaleUpInput {
  /** Instances running now (integer >= 0). */
  currentInstances: number;
  /** CPU usage in percent, 0..100, as in the seed. */
  cpuUsage: number;
  /** Dollars per hour of one more instance. Optional when `instanceType` is given. */
  costPerInstance?: number;
  /** Instance type to price from the table when `costPerInstance` is omitted. */
  instanceType?: string;
}

/** Arguments of {@link CostOptimizer.desiredReplicas}. */
export interface DesiredReplicasInput {
  /** Replicas running now (integer >= 0). */
  current: number;
  /** Current per-replica metric value (e.g. 85 for 85 % CPU). */
  metric: number;
  /** Target per-replica metric value (e.g. 70). Same unit as `metric`. */
  target: number;
  /** Fewest replicas. @default 1 */
  min?: number;
  /** Most replicas. @default unbounded */
  max?: number;
  /** Dollars per hour of one replica; omit to ignore the budget. */
  costPerInstance?: number;
  /**
   * Ratio band around 1 within which the replica count is left alone (the HPA's
   * `--horizontal-pod-autoscaler-tolerance` is 0.1). @default 0 (the plain formula)
   */
  tolerance?: number;
}

/** Options of {@link CostOptimizer.guard}. */
export interface GuardOptions {
  /** Dollars the call is expected to cost; refused when it would overshoot the budget. @default 0 */
  estimatedCost?: number;
}

/**
 * A budget-guarded function: call it like the original. It is also awaitable on its own:
 * `await optimizer.guard(fn)` runs `fn()` once with no arguments.
 */
export type GuardedFunction<A extends unknown[], R> = ((...args: A) => Promise<R>) & PromiseLike<R>;

/**
 * Cost-aware scaling, after the seed's `CostOptimizer`, fixed: spend lives in clock-hour buckets
 * (a new hour starts at zero), is shared by every instance that uses the same Redis, and
 * includes LLM token spend priced from a table.
 *
 * @example
 * const optimizer = new CostOptimizer({ hourlyBudget: 100, redis: process.env.REDIS_URL });
 * await optimizer.recordLLMUsage({ model: 'gpt-4o-mini', inputTokens: 1200, outputTokens: 300 });
 * if (await optimizer.shouldScaleUp({ currentInstances: 10, cpuUsage: 75, costPerInstance: 0.2 })) scaleUp();
 * const ask = optimizer.guard(callLLM); // throws BudgetExceededError once the hour's budget is spent
 */
export class CostOptimizer {
  /** Dollars allowed per clock hour. */
  readonly hourlyBudget: number;
  /** The effective price table (defaults merged with `prices`). */
  readonly prices: Readonly<PriceTable>;
  private readonly instanceTypes: Readonly<Record<string, string>>;
  private readonly store: SpendStore;
  private readonly backend: ResolvedBackend<SpendStore>;
  private readonly cpuPercent: number;
  private readonly ttl: number;
  private readonly now: () => number;
  private readonly emitter = new Emitter<CostOptimizerEvents>();
  private readonly mSpend: CounterHandle;
  private readonly mInput: CounterHandle;
  private readonly mOutput: CounterHandle;
  private readonly mExceeded: CounterHandle;
  private readonly mHour: GaugeHandle;

  constructor(options: CostOptimizerOptions = {}) {
    assertObject(options, 'options');
    this.hourlyBudget = assertQuantity(
      options.hourlyBudget ?? DEFAULT_HOURLY_BUDGET,
      'hourlyBudget',
      'dollars',
      {
        min: 0,
      },
    );
    this.cpuPercent = assertNumber(
      options.scaleUpCpuPercent ?? DEFAULT_SCALE_UP_CPU_PERCENT,
      'scaleUpCpuPercent',
      { min: 0, max: 100 },
    );
    this.ttl = assertQuantity(options.bucketTtl ?? 90_000, 'bucketTtl', 'seconds', {
      min: 3600,
      max: MAX_DURATION_SECONDS,
    });
    this.now = options.now === undefined ? () => Date.now() : assertFunction(options.now, 'now');
    this.prices = Object.freeze(mergePrices(options.prices));
    const types = assertObject(options.instanceTypes, 'instanceTypes', true) ?? {};
    for (const [k, v] of Object.entries(types)) assertString(v, `instanceTypes.${k}`);
    this.instanceTypes = table(DEFAULT_INSTANCE_TYPES, types as Record<string, string>);

    const durability = resolveDurability(options.durability);
    if (
      durability &&
      (options.store !== undefined || options.backend !== undefined || options.redis == null)
    ) {
      throw durabilityNeedsRedis();
    }
    this.backend = resolveBackend(options, {
      module: 'CostOptimizer',
      storeName: 'SpendStore',
      prefix: 'azscale:cost:',
      memory: () => new MemorySpendStore(this.now),
      redis: (conn, { prefix }) =>
        new RedisSpendStore(conn, {
          prefix,
          name: validateId(options.name ?? 'default', 'name', 128),
          ...(durability ? { durability: options.durability } : {}),
        }),
      validateStore: (x): x is SpendStore => {
        // Names the missing method (`store.add`), finer than "must be a SpendStore".
        for (const m of ['add', 'total', 'categories', 'close']) {
          assertFunction((x as Record<string, unknown>)[m], `store.${m}`);
        }
        return true;
      },
    });
    this.store = this.backend.store;

    const metrics = options.metrics ?? noopMetrics;
    this.mSpend = metrics.counter('scaling_spend_dollars_total');
    this.mInput = metrics.counter('scaling_llm_tokens_total', { kind: 'input' });
    this.mOutput = metrics.counter('scaling_llm_tokens_total', { kind: 'output' });
    this.mExceeded = metrics.counter('scaling_budget_exceeded_total');
    this.mHour = metrics.gauge('scaling_spend_hour_dollars');
    // The budget beside the spend, so an alert can compare the two (spend / budget > 0.8).
    metrics.gauge('scaling_budget_hour_dollars').set(this.hourlyBudget);
  }

  /** Adds a listener (`budgetExceeded`, `spend`); returns a disposer. */
  on<K extends keyof CostOptimizerEvents>(event: K, listener: CostOptimizerEvents[K]): Disposer {
    return this.emitter.on(event, listener);
  }

  /** Start of the current hour bucket (UTC clock hour), epoch milliseconds. */
  hourStartMs(): number {
    return this.hour() * HOUR_MS;
  }

  /**
   * Adds `amount` dollars to the current hour and returns the hour's new total (across every
   * instance sharing the store). Emits `budgetExceeded` when this addition crosses the budget.
   * @throws ValidationError when `amount` is negative or not finite, or `category` is invalid.
   */
  async recordSpend(amount: number, options: { category?: string } = {}): Promise<number> {
    assertQuantity(amount, 'amount', 'dollars', { min: 0, max: MAX_AMOUNT });
    assertObject(options, 'options');
    const category =
      options.category === undefined ? undefined : validateId(options.category, 'category', 128);
    return this.add(amount, category);
  }

  /**
   * The dollar cost of an LLM call from the price table, without recording it.
   * @throws ValidationError for an unknown model or bad token counts.
   */
  estimateLLMCost(usage: Omit<LLMUsage, 'category'>): number {
    assertObject(usage, 'usage');
    const model = assertString(usage.model, 'model');
    const input = assertNumber(usage.inputTokens, 'inputTokens', TOKEN_COUNT);
    const output = assertNumber(usage.outputTokens, 'outputTokens', TOKEN_COUNT);
    const cached = optionalNumber(usage.cachedInputTokens, 'cachedInputTokens', TOKEN_COUNT) ?? 0;
    const price = findModelPrice(this.prices.models, model);
    if (!price) {
      throw new ValidationError(
        `model ${JSON.stringify(model.slice(0, 80))} has no price; pass it in prices.models (dollars per million tokens)`,
        { option: 'model', context: { model: model.slice(0, 80) } },
      );
    }
    const cost =
      (input * price.input + output * price.output + cached * (price.cachedInput ?? price.input)) /
      1_000_000;
    if (!Number.isFinite(cost) || cost < 0 || cost > MAX_AMOUNT) {
      throw new ValidationError(
        `the usage of ${JSON.stringify(model.slice(0, 80))} prices at ${describeValue(cost)} dollars, outside 0..${MAX_AMOUNT}`,
        { option: 'usage', context: { model: model.slice(0, 80) } },
      );
    }
    return cost;
  }

  /**
   * Prices an LLM call from the model table and records it as spend. Returns the call's cost in
   * dollars.
   * @throws ValidationError for an unknown model, or token counts that are not integers >= 0.
   */
  async recordLLMUsage(usage: LLMUsage): Promise<number> {
    const cost = this.estimateLLMCost(usage);
    const category =
      usage.category === undefined ? 'llm' : validateId(usage.category, 'category', 128);
    this.mInput.inc(usage.inputTokens + (usage.cachedInputTokens ?? 0));
    this.mOutput.inc(usage.outputTokens);
    await this.add(cost, category);
    return cost;
  }

  /** Dollars spent in the current hour, across every instance sharing the store. */
  async currentSpend(): Promise<number> {
    const total = checkTotal(await this.store.total(this.hour()));
    this.mHour.set(total);
    return total;
  }

  /** Dollars left in the current hour (never negative). */
  async remainingBudget(): Promise<number> {
    return Math.max(0, this.hourlyBudget - (await this.currentSpend()));
  }

  /**
   * Spend per clock hour for the last `hours` hours (1..25, the current one last), oldest first,
   * as the store still holds them (buckets live `bucketTtl` seconds after their last write; a
   * missing bucket reads 0). One read per hour.
   * @throws ValidationError when `hours` is not an integer in 1..25.
   */
  async hourlySpend(hours = 24): Promise<HourlySpend[]> {
    assertNumber(hours, 'hours', { integer: true, min: 1, max: 25 });
    const current = this.hour();
    const idx = Array.from({ length: hours }, (_, i) => current - hours + 1 + i);
    const totals = await Promise.all(idx.map((h) => this.store.total(h)));
    return idx.map((h, i) => ({ hourStartMs: h * HOUR_MS, total: checkTotal(totals[i] ?? 0) }));
  }

  /** The current hour's spend by category (spend recorded without a category is not listed). */
  async spendByCategory(): Promise<Record<string, number>> {
    return this.store.categories(this.hour());
  }

  /**
   * The seed's `should_scale_up`, fixed: refuses (and emits `budgetExceeded`) when the current
   * hour's spend plus the new instance's cost for the rest of the hour exceeds the budget;
   * otherwise says yes when `cpuUsage` is above `scaleUpCpuPercent` (70).
   * @throws ValidationError when `cpuUsage` is outside 0..100, `currentInstances` is not an
   *   integer >= 0, or the cost is missing or negative.
   */
  async shouldScaleUp(input: ShouldScaleUpInput): Promise<boolean> {
    assertObject(input, 'input');
    assertNumber(input.currentInstances, 'currentInstances', { integer: true, min: 0 });
    const cpu = assertQuantity(input.cpuUsage, 'cpuUsage', 'percent', { min: 0, max: 100 });
    const cost = this.costOf(input.costPerInstance, input.instanceType);
    const spent = await this.currentSpend();
    const projected = spent + cost * this.restOfHour();
    if (projected > this.hourlyBudget) {
      this.exceeded('shouldScaleUp', spent, projected);
      return false;
    }
    return cpu > this.cpuPercent;
  }

  /**
   * The seed's `optimize_instance_types`: `cpu_intensive` -> c5.xlarge, `memory_intensive` ->
   * r5.xlarge, anything else -> t3.xlarge (general purpose), plus your `instanceTypes`.
   */
  optimizeInstanceTypes(
    workloadType: 'cpu_intensive' | 'memory_intensive' | 'general' | (string & {}),
  ): string {
    assertString(workloadType, 'workloadType');
    return (
      (Object.hasOwn(this.instanceTypes, workloadType)
        ? this.instanceTypes[workloadType]
        : this.instanceTypes.general) ?? 't3.xlarge'
    );
  }

  /** Dollars per hour of `instanceType` from the price table. */
  instancePrice(instanceType: string): number {
    assertString(instanceType, 'instanceType');
    // An own property or nothing: `constructor` is an unknown type, not Object's constructor.
    const p = Object.hasOwn(this.prices.instances, instanceType)
      ? this.prices.instances[instanceType]
      : undefined;
    if (typeof p !== 'number' || !Number.isFinite(p)) {
      throw new ValidationError(
        `instance type ${JSON.stringify(instanceType.slice(0, 80))} has no price; pass it in prices.instances (dollars per hour)`,
        { option: 'instanceType' },
      );
    }
    return p;
  }

  /**
   * Replicas to run: the Kubernetes HPA formula `ceil(current * metric / target)`, clamped to
   * `min`..`max`, and, when `costPerInstance` is given, to what the budget affords: a fleet
   * whose hour costs at most `hourlyBudget`, and added replicas whose cost for the rest of this
   * hour fits in what is left of it. The budget only limits growth; it never pushes below the
   * current count or `min`. Emits `budgetExceeded` when it limited the answer.
   */
  async desiredReplicas(input: DesiredReplicasInput): Promise<number> {
    assertObject(input, 'input');
    const current = assertNumber(input.current, 'current', { integer: true, min: 0 });
    const metric = assertNumber(input.metric, 'metric', { min: 0 });
    const target = assertNumber(input.target, 'target', { positive: true });
    const min = assertNumber(input.min ?? 1, 'min', { integer: true, min: 0 });
    const max = assertNumber(input.max ?? Number.MAX_SAFE_INTEGER, 'max', { integer: true, min });
    const tolerance = assertNumber(input.tolerance ?? 0, 'tolerance', { min: 0, max: 1 });
    const cost =
      input.costPerInstance === undefined
        ? undefined
        : assertQuantity(input.costPerInstance, 'costPerInstance', 'dollars per hour', {
            min: 0,
            max: MAX_AMOUNT,
          });

    const ratio = metric / target;
    let desired =
      Math.abs(ratio - 1) <= tolerance && current > 0 ? current : Math.ceil(current * ratio);
    desired = Math.min(max, Math.max(min, desired));
    if (cost === undefined || cost === 0 || desired <= current) return desired;

    const spent = await this.currentSpend();
    const left = this.hourlyBudget - spent;
    const extra = Math.max(0, Math.floor(left / (cost * this.restOfHour()) + 1e-9));
    const fleet = Math.floor(this.hourlyBudget / cost + 1e-9);
    const affordable = Math.max(current, Math.min(fleet, current + extra));
    if (affordable < desired) {
      this.exceeded(
        'desiredReplicas',
        spent,
        spent + (desired - current) * cost * this.restOfHour(),
      );
      return Math.max(min, affordable);
    }
    return desired;
  }

  /**
   * Wraps `fn` so that each call first checks the hour's budget and throws
   * {@link BudgetExceededError} (and emits `budgetExceeded`) when it is used up, or when
   * `estimatedCost` would overshoot it. Record the call's real cost with
   * {@link recordLLMUsage}. The result is also awaitable: `await optimizer.guard(fn)` runs `fn()`
   * once (so do not return a guarded function from an async function; wrap it in an object).
   *
   * @example
   * const ask = optimizer.guard((q: string) => llm.chat(q));
   * try { await ask('hi') } catch (e) { if (isBudgetExceededError(e)) fallback() }
   */
  guard<A extends unknown[], R>(
    fn: (...args: A) => R | PromiseLike<R>,
    options: GuardOptions = {},
  ): GuardedFunction<A, R> {
    assertFunction(fn, 'fn');
    assertObject(options, 'options');
    const estimate =
      options.estimatedCost === undefined
        ? 0
        : assertQuantity(options.estimatedCost, 'estimatedCost', 'dollars', {
            min: 0,
            max: MAX_AMOUNT,
          });
    const guarded = async (...args: A): Promise<R> => {
      const spent = await this.currentSpend();
      const projected = spent + estimate;
      if (spent >= this.hourlyBudget || projected > this.hourlyBudget) {
        this.exceeded('guard', spent, projected);
        throw new BudgetExceededError(
          `hourly budget of $${this.hourlyBudget} is used up: $${round(spent)} spent this hour${estimate > 0 ? `, call estimated at $${round(estimate)}` : ''}`,
          {
            context: {
              budget: this.hourlyBudget,
              spent,
              projected,
              hourStartMs: this.hourStartMs(),
              retryAfter: Math.ceil(this.restOfHour() * 3600),
            },
          },
        );
      }
      return await fn(...args);
    };
    // Awaiting the guard itself runs fn() once: supports `await optimizer.guard(() => call())`.
    Object.defineProperty(guarded, 'then', {
      enumerable: false,
      value: <T1 = R, T2 = never>(
        onFulfilled?: ((value: R) => T1 | PromiseLike<T1>) | null,
        onRejected?: ((reason: unknown) => T2 | PromiseLike<T2>) | null,
      ) => guarded(...([] as unknown as A)).then(onFulfilled, onRejected),
    });
    return guarded as GuardedFunction<A, R>;
  }

  /** Closes the Redis connection we created; a user-supplied client or store stays open. */
  async close(): Promise<void> {
    await this.backend.close();
  }

  private hour(): number {
    const now = this.now();
    if (typeof now !== 'number' || !Number.isFinite(now)) {
      throw new ValidationError(
        `now() must return epoch milliseconds, received ${describeValue(now)}`,
        {
          option: 'now',
        },
      );
    }
    return Math.floor(now / HOUR_MS);
  }

  /** Fraction of the current hour still to come, in (0, 1]. */
  private restOfHour(): number {
    const now = this.now();
    return ((Math.floor(now / HOUR_MS) + 1) * HOUR_MS - now) / HOUR_MS;
  }

  private costOf(costPerInstance: number | undefined, instanceType: string | undefined): number {
    if (costPerInstance !== undefined) {
      return assertQuantity(costPerInstance, 'costPerInstance', 'dollars per hour', {
        min: 0,
        max: MAX_AMOUNT,
      });
    }
    if (instanceType !== undefined) return this.instancePrice(instanceType);
    throw new ValidationError('costPerInstance (dollars per hour) or instanceType is required', {
      option: 'costPerInstance',
    });
  }

  private async add(amount: number, category: string | undefined): Promise<number> {
    const hour = this.hour();
    if (!Number.isFinite(amount) || amount < 0) {
      throw new ValidationError(
        `amount must be finite dollars >= 0, received ${describeValue(amount)}`,
        {
          option: 'amount',
        },
      );
    }
    const total = checkTotal(await this.store.add(hour, amount, category, this.ttl));
    this.mSpend.inc(amount);
    this.mHour.set(total);
    const hourStartMs = hour * HOUR_MS;
    this.emitter.emit('spend', { amount, category, total, hourStartMs });
    // Only the write that crosses the line reports it, so a fleet emits it once per hour.
    if (total > this.hourlyBudget && total - amount <= this.hourlyBudget) {
      this.exceeded('recordSpend', total, total);
    }
    return total;
  }

  private exceeded(source: BudgetExceededEvent['source'], spent: number, projected: number): void {
    this.mExceeded.inc();
    this.emitter.emit('budgetExceeded', {
      source,
      spent,
      projected,
      budget: this.hourlyBudget,
      hourStartMs: this.hourStartMs(),
    });
  }
}

// A total that is not a finite amount >= 0 (a store written by something else, a custom store
// with a bug) must not read as "nothing spent": NaN compares false with every budget, so guard()
// would let every call through. It is an error instead, and guard() refuses.
function checkTotal(total: unknown): number {
  if (typeof total !== 'number' || !Number.isFinite(total) || total < 0) {
    throw new SerializationError(
      `the spend store returned ${describeValue(total)} as the hour's total, not dollars >= 0`,
      { context: { total: String(total).slice(0, 40) } },
    );
  }
  return total;
}

function round(n: number): string {
  return String(Math.round(n * 10_000) / 10_000);
}

// A table with no prototype, filled from own entries only: a lookup of `constructor` or
// `__proto__` finds nothing rather than Object.prototype's members.
function table<T>(...sources: Readonly<Record<string, T>>[]): Readonly<Record<string, T>> {
  const out = Object.create(null) as Record<string, T>;
  for (const src of sources) {
    for (const k of Object.keys(src))
      Object.defineProperty(out, k, {
        value: src[k],
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return Object.freeze(out);
}

function mergePrices(given: CostOptimizerOptions['prices']): PriceTable {
  const p = assertObject(given, 'prices', true) ?? {};
  const instances = assertObject(p.instances, 'prices.instances', true) ?? {};
  const models = assertObject(p.models, 'prices.models', true) ?? {};
  for (const [k, v] of Object.entries(instances)) {
    assertQuantity(v, `prices.instances.${k}`, 'dollars per hour', { min: 0, max: MAX_AMOUNT });
  }
  const lowered: Record<string, ModelPrice> = Object.create(null);
  const perMillion = { min: 0, max: MAX_AMOUNT };
  for (const [k, v] of Object.entries(models)) {
    const m = assertObject(v, `prices.models.${k}`) as unknown as ModelPrice;
    assertQuantity(m.input, `prices.models.${k}.input`, 'dollars per million tokens', perMillion);
    assertQuantity(m.output, `prices.models.${k}.output`, 'dollars per million tokens', perMillion);
    if (m.cachedInput !== undefined) {
      assertQuantity(
        m.cachedInput,
        `prices.models.${k}.cachedInput`,
        'dollars per million tokens',
        perMillion,
      );
    }
    const price: ModelPrice = { input: m.input, output: m.output };
    if (m.cachedInput !== undefined) price.cachedInput = m.cachedInput;
    Object.defineProperty(lowered, k.toLowerCase(), {
      value: Object.freeze(price),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return {
    instances: table(DEFAULT_PRICES.instances, instances as Record<string, number>),
    models: table(DEFAULT_PRICES.models, lowered),
  };
}

/**
 * The LLM pipeline every adapter (AI SDK, LangChain, raw calls) is a thin shell over. One request:
 * cache lookup → budget guard → rate limit (requests and estimated tokens) → concurrency slot →
 * the model's circuit breaker → the call → spend from the reported usage → cache write. A
 * provider failure moves to the next model of the request; the failed model's breaker (shared
 * over Redis when its options say so) keeps the fleet off it for `cooldown` seconds.
 *
 * This file holds the cache side (key, lookup, single flight); `miss.ts` the stages after a miss.
 */
import type { DistributedCache } from '../cache/distributed-cache.js';
import { stableStringify } from '../cache/stable-json.js';
import { ValidationError, describeValue } from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { sha256Hex } from '../core/keys.js';
import { noopMetrics } from '../core/metrics.js';
import { type SpanAttributes, type SpanHandle, withSpan } from '../core/trace.js';
import { assertObject } from '../core/validate.js';
import type { CircuitBreaker } from '../resilience/circuit.js';
import type { RateLimiter } from '../resilience/rate-limiter.js';
import { type LLMEntry, isLLMEntry } from './entry.js';
import { Flight, type LLMAnswerSource, PART_BATCHES, cancelled } from './flight.js';
import { type LLMMetrics, makeLLMMetrics } from './metrics.js';
import { type LLMCallMode, ModelCaller } from './miss.js';
import { type PipelineSettings, resolveSettings } from './settings.js';
import type {
  LLMModelCall,
  LLMPipelineEvents,
  LLMPipelineOptions,
  LLMPipelineRequest,
  LLMPipelineResult,
  LLMPipelineStream,
} from './types.js';

export type {
  LLMModelCall,
  LLMPipelineEvents,
  LLMPipelineOptions,
  LLMPipelineRequest,
  LLMPipelineResult,
  LLMPipelineStream,
  LLMTokenEstimateInput,
} from './types.js';

// Thrown out of the cache loader to return an answer without storing it.
class Uncacheable {
  constructor(readonly entry: LLMEntry) {}
}

function checkRequest(req: LLMPipelineRequest): void {
  assertObject(req, 'request');
  if (!Array.isArray(req.models) || req.models.length === 0) {
    throw new ValidationError(
      `models must be a non-empty array, received ${describeValue(req.models)}`,
      { option: 'models' },
    );
  }
  for (let i = 0; i < req.models.length; i++) {
    const m = req.models[i];
    if (typeof m !== 'object' || m === null || typeof m.model !== 'string' || m.model === '') {
      throw new ValidationError(`models[${i}].model must be a non-empty string`, {
        option: `models[${i}].model`,
      });
    }
    if (typeof m.generate !== 'function' && typeof m.stream !== 'function') {
      throw new ValidationError(`models[${i}] needs a generate or a stream function`, {
        option: `models[${i}]`,
      });
    }
  }
}

function chatAttributes(req: LLMPipelineRequest, mode: LLMCallMode): SpanAttributes {
  const primary = req.models[0] as LLMModelCall;
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.system': primary.provider ?? 'unknown',
    'gen_ai.request.model': primary.model,
    'gen_ai.request.temperature': req.temperature,
    'gen_ai.request.max_tokens': req.maxOutputTokens,
    'azscale.llm.stream': mode === 'stream',
  };
}

function annotate(span: SpanHandle, source: LLMAnswerSource, entry: LLMEntry): void {
  if (!span.isRecording()) return;
  // Tokens are what this request spent: none when another call paid for the answer.
  const paid = source === 'model' || source === 'bypass';
  span.setAttributes({
    'azscale.llm.source': source,
    'gen_ai.response.model': entry.model,
    'gen_ai.response.id': entry.responseId,
    'gen_ai.response.finish_reasons': [entry.finishReason],
    'gen_ai.usage.input_tokens': paid ? entry.usage?.inputTokens : 0,
    'gen_ai.usage.output_tokens': paid ? entry.usage?.outputTokens : 0,
  });
}

/**
 * The LLM pipeline. Adapters build an {@link LLMPipelineRequest} per call; `generate` returns
 * the whole answer, `stream` its parts, and both share one cache entry and one in-flight call.
 *
 * @example
 * const llm = new LLMPipeline({ cache, optimizer, rateLimiter, limiter, breaker: { redis } });
 * const { entry } = await llm.generate({ request: body, temperature: 0, models: [callOpenAI] });
 */
export class LLMPipeline {
  private readonly s: PipelineSettings;
  private readonly flights = new Map<string, Flight>();
  private readonly events = new Emitter<LLMPipelineEvents>();
  private readonly m: LLMMetrics;
  private readonly caller: ModelCaller;

  constructor(options: LLMPipelineOptions = {}) {
    this.s = resolveSettings(options);
    this.m = makeLLMMetrics(this.s.o.metrics ?? noopMetrics);
    this.caller = new ModelCaller(this.s, this.m, this.events);
  }

  /** Adds an event listener; returns a disposer. */
  on<K extends keyof LLMPipelineEvents>(event: K, listener: LLMPipelineEvents[K]): Disposer {
    return this.events.on(event, listener);
  }

  /** The cache key of a request (undefined when it is not cacheable). */
  cacheKey(req: LLMPipelineRequest): string | undefined {
    const o = this.s.o;
    if (!o.cache || req.cacheable === false) return undefined;
    if (!o.cacheNonDeterministic && req.temperature !== 0) return undefined;
    try {
      return this.s.prefix + sha256Hex(stableStringify(req.request, 'LLM request'));
    } catch {
      // Binary prompt parts (images as bytes) have no JSON form: such requests are not cached.
      return undefined;
    }
  }

  /** The whole answer of `req`. */
  generate(req: LLMPipelineRequest): Promise<LLMPipelineResult> {
    try {
      checkRequest(req);
    } catch (e) {
      return Promise.reject(e);
    }
    const key = this.cacheKey(req);
    const running = this.running(key);
    if (running) return this.join(running, req.signal);
    if (key === undefined)
      return whole(this.launch(req, key, 'generate', false), req.signal, false);
    // A hit is answered straight from the lookup: no flight, no replay into parts.
    return withSpan(
      'azscale.llm.chat',
      chatAttributes(req, 'generate'),
      async (span) => {
        const t0 = performance.now();
        const signal = req.signal;
        if (signal?.aborted) throw cancelled(signal.reason);
        const hit = await this.lookup(key);
        // A caller who left during the lookup gets what a flight's caller gets.
        if (signal?.aborted) throw cancelled(signal.reason);
        if (hit) {
          this.m.cache.inc();
          this.m.duration.observe((performance.now() - t0) / 1000);
          annotate(span, 'cache', hit);
          return { entry: hit, source: 'cache' as const, model: undefined };
        }
        const joined = this.running(key);
        if (joined) return this.join(joined, req.signal);
        return whole(this.launch(req, key, 'generate', true, span, t0), req.signal, false);
      },
      { kind: 'client' },
    );
  }

  /** The answer of `req` as parts, as they arrive (or replayed from the cache). */
  stream(req: LLMPipelineRequest): LLMPipelineStream {
    checkRequest(req);
    const key = this.cacheKey(req);
    const running = this.running(key);
    const flight = running ?? this.launch(req, key, 'stream', false);
    const joined = running !== undefined;
    if (joined) this.m.peer.inc();
    const delayMs = this.s.delayMs;
    const result = flight.settled.then((entry) => ({
      entry,
      source: sourceFor(flight, joined),
      model: flight.model,
    }));
    result.catch(() => undefined);
    return {
      result,
      get source() {
        return sourceFor(flight, joined);
      },
      get model() {
        return flight.model;
      },
      [Symbol.asyncIterator]: () => flight.read(req.signal, delayMs),
      [PART_BATCHES]: () => flight.batches(req.signal, delayMs),
    } as LLMPipelineStream;
  }

  /** The breaker of one model (made on first use from the `breaker` options). */
  breakerFor(call: LLMModelCall, index: number): CircuitBreaker | undefined {
    return this.caller.breakerFor(call, index);
  }

  /**
   * Closes the breakers and the rate limiter this pipeline made (a given cache, limiters and
   * optimizer stay open).
   */
  async close(): Promise<void> {
    await Promise.all([this.caller.close(), this.s.ownsRate ? this.s.rate?.close() : undefined]);
  }

  /** The rate limiter in use (given, or made from the `rateLimiter` options). */
  get rateLimiter(): RateLimiter | undefined {
    return this.s.rate;
  }

  // Another caller's call answers this request too (counted as `peer`).
  private join(flight: Flight, signal: AbortSignal | undefined): Promise<LLMPipelineResult> {
    this.m.peer.inc();
    return whole(flight, signal, true);
  }

  private running(key: string | undefined): Flight | undefined {
    if (key === undefined) return undefined;
    const f = this.flights.get(key);
    return f && !f.done ? f : undefined;
  }

  /**
   * Starts the flight of `req`: registered under `key` so identical requests join it, run in
   * the given span (the caller's, after a lookup that missed) or a new one.
   */
  private launch(
    req: LLMPipelineRequest,
    key: string | undefined,
    mode: LLMCallMode,
    lookedUp: boolean,
    span?: SpanHandle,
    t0 = performance.now(),
  ): Flight {
    const flight = new Flight();
    if (key !== undefined) {
      this.flights.set(key, flight);
      const forget = () => {
        if (this.flights.get(key) === flight) this.flights.delete(key);
      };
      void flight.settled.then(forget, forget);
    } else flight.source = 'bypass';
    const run = (sp: SpanHandle) => this.run(flight, req, key, mode, sp, lookedUp);
    const p = span
      ? run(span)
      : withSpan('azscale.llm.chat', chatAttributes(req, mode), run, { kind: 'client' });
    const done = () => {
      this.m.duration.observe((performance.now() - t0) / 1000);
      if (flight.firstPartAt !== undefined) {
        this.m.firstPart.observe((flight.firstPartAt - t0) / 1000);
      }
    };
    // The flight carries the outcome to its readers; this promise only closes the span.
    p.then(done, done);
    return flight;
  }

  private async run(
    flight: Flight,
    req: LLMPipelineRequest,
    key: string | undefined,
    mode: LLMCallMode,
    span: SpanHandle,
    lookedUp: boolean,
  ): Promise<void> {
    try {
      let entry: LLMEntry;
      if (key === undefined) {
        entry = await this.caller.load(flight, req, mode);
      } else {
        const hit = lookedUp ? undefined : await this.lookup(key);
        if (hit) {
          flight.source = 'cache';
          flight.replay(hit, this.s.chunkChars);
          entry = hit;
        } else entry = await this.fill(flight, req, key, mode);
      }
      this.m[flight.source].inc();
      annotate(span, flight.source, entry);
      flight.finish(entry);
    } catch (e) {
      this.m.failed.inc();
      flight.fail(e);
      throw e;
    }
  }

  // A miss: one call per fleet through the cache's lock; the others get the stored entry.
  private async fill(
    flight: Flight,
    req: LLMPipelineRequest,
    key: string,
    mode: LLMCallMode,
  ): Promise<LLMEntry> {
    const cache = this.s.o.cache as DistributedCache;
    let ran = false;
    try {
      const v = await cache.getOrSetJSON<unknown>(
        key,
        async () => {
          ran = true;
          const e = await this.caller.load(flight, req, mode);
          // An answer cut short by the provider is returned, not stored.
          if (e.finishReason === 'error' || e.extra?.noStore === true) throw new Uncacheable(e);
          return e;
        },
        { ...(this.s.ttl !== undefined ? { ttl: this.s.ttl } : {}), lock: this.s.lock },
      );
      if (!isLLMEntry(v)) {
        throw new ValidationError(`cached value of ${key} is not an LLM entry`, {
          option: 'cache',
        });
      }
      if (!ran) {
        flight.source = 'peer';
        flight.replay(v, this.s.chunkChars);
      }
      return v;
    } catch (e) {
      if (!(e instanceof Uncacheable)) throw e;
      return e.entry;
    }
  }

  private async lookup(key: string): Promise<LLMEntry | undefined> {
    const cache = this.s.o.cache as DistributedCache;
    let v: unknown;
    try {
      v = await cache.getJSON<unknown>(key);
    } catch (e) {
      // An unreadable entry is a miss: the call goes through and overwrites it.
      this.events.emit('error', e);
      await cache.delete(key).catch(() => false);
      return undefined;
    }
    if (v === null) return undefined;
    if (isLLMEntry(v)) return v;
    // Not an entry (another writer, an older format): removed, so the fill can store one.
    this.events.emit(
      'error',
      new ValidationError(`cached value of ${key} is not an LLM entry; it was replaced`, {
        option: 'cache',
      }),
    );
    await cache.delete(key).catch(() => false);
    return undefined;
  }
}

// A request that joined another caller's call did not call the model itself: `peer`.
function sourceFor(flight: Flight, joined: boolean): LLMAnswerSource {
  return joined && flight.source === 'model' ? 'peer' : flight.source;
}

async function whole(
  flight: Flight,
  signal: AbortSignal | undefined,
  joined: boolean,
): Promise<LLMPipelineResult> {
  const entry = await flight.whole(signal);
  return { entry, source: sourceFor(flight, joined), model: flight.model };
}

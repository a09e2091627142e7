/**
 * `AzscaleLangChainCache`: LangChain's cache contract (`BaseCache`) over a `DistributedCache`,
 * so a fleet of LangChain services shares answers through Redis with azscale's two tiers,
 * single-flight reads, size limits and degrade-on-Redis-failure behaviour.
 */
import type { BaseCache as LangChainBaseCache } from '@langchain/core/caches';
import type { StoredGeneration } from '@langchain/core/messages';
import type { Generation } from '@langchain/core/outputs';
import { type DistributedCache, isDistributedCache } from '../cache/distributed-cache.js';
import { stableStringify } from '../cache/stable-json.js';
import { ValidationError, describeValue } from '../core/errors.js';
import { sha256Hex, validatePrefix } from '../core/keys.js';
import { optionalDuration } from '../core/timers.js';
import { loadLangChain } from './load.js';

interface CachesModule {
  BaseCache: typeof LangChainBaseCache;
  serializeGeneration(g: Generation): StoredGeneration;
  deserializeStoredGeneration(g: StoredGeneration): Generation;
}

const caches = loadLangChain<CachesModule>('caches');

/** Options of {@link AzscaleLangChainCache}. */
export interface AzscaleLangChainCacheOptions {
  /** Seconds an answer stays cached. @default the cache's ttl */
  ttl?: number;
  /** Key prefix (inside the cache's own prefix). @default 'llm:lc:' */
  prefix?: string;
}

interface StoredEntry {
  v: 1;
  generations: StoredGeneration[];
}

function isStored(v: unknown): v is StoredEntry {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as StoredEntry).v === 1 &&
    Array.isArray((v as StoredEntry).generations)
  );
}

/**
 * A LangChain cache (`BaseCache` from `@langchain/core/caches`) stored in a `DistributedCache`.
 * Keys are `llm:lc:<sha256 of prompt and llmKey>`; LangChain's `llmKey` already holds the model
 * and every call option. Generations are stored with LangChain's own serializer, so messages
 * (tool calls included) come back as messages.
 *
 * @example
 * const model = new ChatOpenAI({ model: 'gpt-4o-mini', cache: new AzscaleLangChainCache(cache, { ttl: 3600 }) });
 */
export class AzscaleLangChainCache extends caches.BaseCache<Generation[]> {
  private readonly store: DistributedCache;
  private readonly ttl: number | undefined;
  private readonly prefix: string;

  constructor(cache: DistributedCache, options: AzscaleLangChainCacheOptions = {}) {
    super();
    if (!isDistributedCache(cache)) {
      throw new ValidationError(
        `cache must be a DistributedCache, received ${describeValue(cache)}`,
        {
          option: 'cache',
        },
      );
    }
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError(`options must be an object, received ${describeValue(options)}`, {
        option: 'options',
      });
    }
    this.store = cache;
    this.ttl = optionalDuration(options.ttl, 'ttl');
    this.prefix = options.prefix === undefined ? 'llm:lc:' : validatePrefix(options.prefix);
  }

  /** The cache key of one prompt under one LangChain `llmKey`. */
  keyOf(prompt: string, llmKey: string): string {
    if (typeof prompt !== 'string' || typeof llmKey !== 'string') {
      throw new ValidationError('prompt and llmKey must be strings', { option: 'prompt' });
    }
    return this.prefix + sha256Hex(stableStringify([prompt, llmKey], 'LangChain cache key'));
  }

  /** The stored generations, or null on a miss (an unreadable entry is a miss). */
  async lookup(prompt: string, llmKey: string): Promise<Generation[] | null> {
    const v = await this.store.getJSON<unknown>(this.keyOf(prompt, llmKey));
    if (!isStored(v)) return null;
    return v.generations.map((g) => caches.deserializeStoredGeneration(g));
  }

  /** Stores `generations` for the prompt. */
  async update(prompt: string, llmKey: string, generations: Generation[]): Promise<void> {
    if (!Array.isArray(generations)) {
      throw new ValidationError(
        `generations must be an array, received ${describeValue(generations)}`,
        {
          option: 'generations',
        },
      );
    }
    const entry: StoredEntry = {
      v: 1,
      generations: generations.map((g) => caches.serializeGeneration(g)),
    };
    await this.store.setJSON(this.keyOf(prompt, llmKey), entry, this.ttl);
  }
}

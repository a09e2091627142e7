import { ValidationError, describeValue } from '../core/errors.js';
import { validateId } from '../core/keys.js';
import { inChunks } from './chunks.js';
import type { CacheEngine } from './engine.js';
import { type CacheBatchEntries, isPlainKey } from './options.js';

/** Chunks of one getBatch/setBatch in flight at once. */
const CHUNKS_IN_FLIGHT = 4;

/** @internal Validated, prefixed keys of a batch. */
export function batchKeys(prefix: string, keys: readonly string[]): readonly string[] {
  if (!Array.isArray(keys)) {
    throw new ValidationError(`keys must be an array of strings, received ${describeValue(keys)}`, {
      option: 'keys',
    });
  }
  const n = keys.length;
  // The option name is built only on failure: no allocation per valid key. Without a prefix
  // the caller's array is sent as is (the stores never mutate it).
  if (prefix === '') {
    for (let i = 0; i < n; i++) if (!isPlainKey(keys[i])) validateId(keys[i], `keys[${i}]`);
    return keys;
  }
  const withPrefix = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const k = keys[i];
    withPrefix[i] = prefix + (isPlainKey(k) ? k : validateId(k, `keys[${i}]`));
  }
  return withPrefix;
}

/** @internal `getBatch` on validated, prefixed keys: chunked when over `chunkSize`. */
export function getMany(
  e: CacheEngine,
  full: readonly string[],
  chunkSize: number,
): Promise<(string | null)[]> {
  const n = full.length;
  if (n === 0) return Promise.resolve([]);
  // The common case (one chunk) returns the chunk's promise without another await layer.
  if (n <= chunkSize) return getChunk(e, full);
  return getChunks(e, full, chunkSize);
}

async function getChunks(
  e: CacheEngine,
  full: readonly string[],
  chunkSize: number,
): Promise<(string | null)[]> {
  const n = full.length;
  const out = new Array<string | null>(n);
  await inChunks(n, chunkSize, CHUNKS_IN_FLIGHT, async (start, end) => {
    const part = await getChunk(e, full.slice(start, end));
    for (let i = 0; i < part.length; i++) out[start + i] = part[i] ?? null;
  });
  return out;
}

/** One round trip's worth of `getBatch` (at most `chunkSize` prefixed keys). */
async function getChunk(e: CacheEngine, full: readonly string[]): Promise<(string | null)[]> {
  const n = full.length;
  const l1 = e.local;
  const store = e.store;
  if (l1 === undefined) {
    const out = await e.remote.degrade('getBatch', () => store.getMany(full), null);
    return out ?? new Array<string | null>(n).fill(null);
  }
  const out = new Array<string | null>(n).fill(null);
  const missIdx: number[] = [];
  const missKeys: string[] = [];
  for (let i = 0; i < n; i++) {
    const hit = l1.lru.get(full[i] as string);
    if (hit !== undefined) {
      out[i] = hit.text;
      e.localHits.inc();
    } else {
      missIdx.push(i);
      missKeys.push(full[i] as string);
    }
  }
  if (missKeys.length === 0) return out;
  e.invalidation.ensureSubscribed();
  const s0 = l1.beginRead();
  try {
    const reader = e.ttlReader;
    const vals = await e.remote.degrade(
      'getBatch',
      (): Promise<(string | null)[] | [string | null, number][]> =>
        reader ? reader.getManyWithTtl(missKeys) : store.getMany(missKeys),
      null,
    );
    if (vals === null) return out;
    for (let j = 0; j < missIdx.length; j++) {
      const r = vals[j];
      const v =
        (reader ? (r as [string | null, number] | undefined)?.[0] : (r as string | null)) ?? null;
      const k = missKeys[j] as string;
      out[missIdx[j] as number] = v;
      if (v !== null && l1.mayFill(k, s0)) {
        l1.fill(k, v, reader ? (r as [string | null, number])[1] : -1);
      }
    }
    return out;
  } finally {
    l1.endRead(s0);
  }
}

/** @internal `setBatch` entries as validated `[prefixed key, value]` pairs. */
export function normalizeEntries(e: CacheEngine, entries: CacheBatchEntries): [string, string][] {
  let pairs: [unknown, unknown][];
  if (entries instanceof Map) {
    pairs = [...entries.entries()];
  } else if (Array.isArray(entries)) {
    pairs = entries.map((x: unknown, i) => {
      if (Array.isArray(x) && x.length === 2) return [x[0], x[1]] as [unknown, unknown];
      if (typeof x === 'object' && x !== null && 'key' in x && 'value' in x) {
        return [(x as { key: unknown }).key, (x as { value: unknown }).value] as [unknown, unknown];
      }
      throw new ValidationError(
        `entries[${i}] must be [key, value] or { key, value }, received ${describeValue(x)}`,
        { option: 'entries' },
      );
    });
  } else if (typeof entries === 'object' && entries !== null) {
    pairs = Object.entries(entries);
  } else {
    throw new ValidationError(
      `entries must be an array of [key, value], a Map or an object, received ${describeValue(entries)}`,
      { option: 'entries' },
    );
  }
  const prefix = e.prefix;
  return pairs.map(([k, v], i) => {
    const key = prefix + (isPlainKey(k) ? k : validateId(k, `entries[${i}] key`));
    e.checkValue(v, 'value');
    return [key, v];
  });
}

/** @internal `setBatch` on normalized entries: chunked when over `chunkSize`. */
export async function setMany(
  e: CacheEngine,
  list: [string, string][],
  ttl: number,
  chunkSize: number,
): Promise<void> {
  const n = list.length;
  if (n === 0) return;
  if (n <= chunkSize) return e.write(list, ttl);
  // Each chunk is its own round trip (own backendTimeout) and its own invalidation message.
  await inChunks(n, chunkSize, CHUNKS_IN_FLIGHT, (start, end) =>
    e.write(list.slice(start, end), ttl),
  );
}

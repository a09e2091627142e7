/**
 * Decorators in a NestJS-style service: `@cached` (the seed's `@cached(ttl=3600)`), `@circuit`
 * (the seed's `@circuit(failure_threshold=5, recovery_timeout=60)`) and `@limit` (bounded LLM
 * concurrency). This file compiles as TC39 decorators (TypeScript 5, no flag); the same class
 * works unchanged under `experimentalDecorators`, which NestJS projects use.
 *
 *   node --import tsx examples/nestjs-decorators.ts
 *
 * In your project: import { cached } from 'azscale/cache'; import { circuit, limit,
 * ConcurrencyLimiter } from 'azscale/resilience'.
 */
import { DistributedCache, cached } from '../src/cache/index.js';
import { isCircuitOpenError } from '../src/core/index.js';
import { ConcurrencyLimiter, circuit, limit } from '../src/resilience/index.js';

const cache = new DistributedCache({ ttl: 3600 });
const llmSlots = new ConcurrencyLimiter({ concurrency: 5, maxQueue: 100, queueTimeout: 10 });

let calls = 0;
let inFlight = 0;
let maxInFlight = 0;
let providerUp = true;

/** What would be `@Injectable() export class AgentService` in NestJS. */
class AgentService {
  constructor(private readonly model = 'gpt-4o-mini') {}

  @cached({ ttl: 3600, cache })
  async expensiveOperation(topic: string, depth: number): Promise<string> {
    calls++;
    return `${this.model}: report on ${topic} (depth ${depth})`;
  }

  @circuit({ name: 'example-provider', failureThreshold: 5, recoveryTimeout: 60 })
  @limit(llmSlots)
  async callExternalService(prompt: string): Promise<string> {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await new Promise((r) => setTimeout(r, 10));
      if (!providerUp) throw new Error('provider down');
      return `completion for ${prompt}`;
    } finally {
      inFlight--;
    }
  }
}

const service = new AgentService();
await service.expensiveOperation('scaling', 2);
// Cached: the key is `AgentService.expensiveOperation` plus the arguments. It does NOT include
// `this`: every instance shares the entry, whatever its `model` (right for a singleton
// service; give `instanceKey: (self) => self.model` when instances differ). For a cache
// injected by NestJS, use `cache: (self) => self.cache` (see examples/nestjs-app/).
await service.expensiveOperation('scaling', 2);
console.log(`expensiveOperation ran ${calls} time(s) for 2 calls`);

await Promise.all(Array.from({ length: 20 }, (_, i) => service.callExternalService(`p${i}`)));
console.log(`at most ${maxInFlight} calls in flight (limit 5)`);

providerUp = false;
let fastFails = 0;
for (let i = 0; i < 8; i++) {
  try {
    await service.callExternalService('x');
  } catch (e) {
    if (isCircuitOpenError(e)) fastFails++;
  }
}
console.log(`after 5 failures the circuit opened: ${fastFails} of 8 calls failed fast`);
await cache.close();
await llmSlots.close();
if (calls !== 1 || maxInFlight > 5 || fastFails !== 3) process.exitCode = 1;

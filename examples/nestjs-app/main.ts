/**
 * A NestJS app on azscale: AzscaleModule.forRoot provides the cache, sessions, limiter and
 * metrics as injectables; a service's `@cached` uses the injected cache
 * (`cache: (self) => self.cache`), `@limit` the injected limiter; terminus reports the azscale
 * health checks; every request is counted under its route template at /metrics; app.close()
 * closes everything. NestJS uses legacy decorators, hence this folder's tsconfig:
 *
 *   npx tsx --tsconfig examples/nestjs-app/tsconfig.json examples/nestjs-app/main.ts
 *   (PORT=8080 to serve until SIGTERM; REDIS_URL to share the cache between instances)
 *
 * esbuild (tsx) does not emit decorator metadata, so constructor parameters name their tokens
 * with @Inject; with tsc and emitDecoratorMetadata, `constructor(cache: DistributedCache)` works
 * too. In your project: import { AzscaleModule, ... } from 'azscale/nestjs'.
 */
import 'reflect-metadata';
import { Controller, Get, Inject, Injectable, Module, Param } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { type DistributedCache, cached } from '../../src/cache/index.js';
import {
  AZSCALE_CACHE,
  AZSCALE_LIMITER,
  AzscaleHealthIndicator,
  AzscaleModule,
} from '../../src/nestjs/index.js';
import { type ConcurrencyLimiter, limit } from '../../src/resilience/index.js';

@Injectable()
class QuoteService {
  computed = 0;
  constructor(
    @Inject(AZSCALE_CACHE) readonly cache: DistributedCache,
    @Inject(AZSCALE_LIMITER) readonly limiter: ConcurrencyLimiter,
  ) {}

  // The key is the method and its arguments, shared by every instance (and every pod on
  // Redis): right for a singleton service. Add `instanceKey: (self) => ...` when two instances
  // of the class are configured differently.
  @cached({ cache: (self: QuoteService) => self.cache, ttl: 60 })
  @limit((self: QuoteService) => self.limiter)
  async quote(symbol: string): Promise<{ symbol: string; price: number }> {
    this.computed++;
    await new Promise((r) => setTimeout(r, 20));
    return { symbol, price: symbol.length * 100 };
  }
}

@Controller()
class AppController {
  constructor(
    @Inject(QuoteService) private readonly quotes: QuoteService,
    @Inject(HealthCheckService) private readonly terminus: HealthCheckService,
    @Inject(AzscaleHealthIndicator) private readonly azscale: AzscaleHealthIndicator,
  ) {}

  @Get('api/quote/:symbol')
  quote(@Param('symbol') symbol: string) {
    return this.quotes.quote(symbol);
  }

  @Get('health')
  @HealthCheck()
  health() {
    return this.terminus.check([() => this.azscale.isHealthy('azscale')]);
  }
}

@Module({
  imports: [
    AzscaleModule.forRoot({
      redis: process.env.REDIS_URL || undefined,
      // The self-check below counts computations: a cache read that times out degrades to a
      // miss (by design), and the first read also waits for the connection, so allow it 5 s.
      cache: { prefix: 'quotes:', backendTimeout: 5 },
      sessions: true,
      limiter: { concurrency: 4 },
      metrics: true,
    }),
    TerminusModule,
  ],
  controllers: [AppController],
  providers: [QuoteService],
})
class AppModule {}

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
app.enableShutdownHooks();
await app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
console.log(`listening on ${base}`);

if (!process.env.PORT) {
  // A symbol of this run: with REDIS_URL the cache outlives the process.
  const symbol = `ACME${process.pid}`;
  for (let i = 0; i < 3; i++) await fetch(`${base}/api/quote/${symbol}`);
  const service = app.get(QuoteService);
  const health = (await (await fetch(`${base}/health`)).json()) as { status: string };
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('azscale_http_requests_total{') && l.includes('/api/quote/:symbol'));
  console.log(
    `quote computed ${service.computed} time(s) for 3 requests; health: ${health.status}`,
  );
  console.log(`metrics: ${line}`);
  await app.close();
  if (service.computed !== 1 || health.status !== 'ok' || !line?.endsWith(' 3'))
    process.exitCode = 1;
}

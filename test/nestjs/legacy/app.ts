// biome-ignore-all lint/style/useImportType: emitDecoratorMetadata needs the classes at run time
/**
 * A NestJS app as a NestJS user writes it (legacy decorators, emitDecoratorMetadata), compiled
 * by test/nestjs/compile.ts. Not part of the root type-check (it needs the legacy flags).
 */
import 'reflect-metadata';
import { Controller, Get, Inject, Injectable, Module, Param } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { DistributedCache, cached } from '../../../src/cache/index.js';
import {
  AZSCALE_BREAKERS,
  AZSCALE_LIMITER,
  AzscaleHealthIndicator,
  AzscaleModule,
} from '../../../src/nestjs/index.js';
import {
  CircuitBreaker,
  ConcurrencyLimiter,
  circuit,
  limit,
} from '../../../src/resilience/index.js';

@Injectable()
export class PriceService {
  calls = 0;
  constructor(
    // By class: emitDecoratorMetadata names DistributedCache as the token.
    readonly cache: DistributedCache,
    @Inject(AZSCALE_LIMITER) readonly limiter: ConcurrencyLimiter,
    @Inject(AZSCALE_BREAKERS) readonly breakers: Record<string, CircuitBreaker>,
  ) {}

  @cached({ cache: (self: PriceService) => self.cache, ttl: 60 })
  @limit((self: PriceService) => self.limiter)
  @circuit({ breaker: (self: PriceService) => self.breakers.prices! })
  async price(sku: string): Promise<{ sku: string; computedBy: number }> {
    this.calls++;
    return { sku, computedBy: this.calls };
  }
}

@Controller()
export class AppController {
  constructor(
    private readonly prices: PriceService,
    private readonly terminus: HealthCheckService,
    private readonly azscale: AzscaleHealthIndicator,
  ) {}

  @Get('api/price/:sku')
  price(@Param('sku') sku: string) {
    return this.prices.price(sku);
  }

  @Get('health')
  @HealthCheck()
  check() {
    return this.terminus.check([() => this.azscale.isHealthy('azscale')]);
  }
}

export async function createApp(redis: string, prefix: string) {
  @Module({
    imports: [
      AzscaleModule.forRoot({
        redis,
        // The test counts method calls: a round trip past the 1 s default on a loaded machine
        // would read as a miss and run the method on the second instance.
        cache: { prefix, backendTimeout: 10 },
        limiter: { concurrency: 2 },
        breakers: { prices: { failureThreshold: 3 } },
        metrics: true,
      }),
      TerminusModule,
    ],
    controllers: [AppController],
    providers: [PriceService],
  })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger: false });
  return app;
}

export async function createAsyncApp(redis: string, prefix: string) {
  const CONFIG = 'CONFIG';
  @Module({ providers: [{ provide: CONFIG, useValue: { redis, prefix } }], exports: [CONFIG] })
  class ConfigModule {}

  @Module({
    imports: [
      AzscaleModule.forRootAsync({
        imports: [ConfigModule],
        inject: [CONFIG],
        useFactory: (c: { redis: string; prefix: string }) => ({
          redis: c.redis,
          cache: { prefix: c.prefix },
          sessions: { prefix: c.prefix },
          queue: { name: `${c.prefix}q` },
        }),
        metricsPath: false,
      }),
    ],
  })
  class AsyncModule {}
  const app = await NestFactory.createApplicationContext(AsyncModule, { logger: false });
  return app;
}

/**
 * AzscaleModule in real NestJS apps (legacy decorators + emitDecoratorMetadata, the Express
 * adapter) over real HTTP and Redis: the primitives are injected (by token and by class); a
 * `@cached({ cache: (self) => self.cache })` method uses the injected cache, shown by a second
 * app instance answering from Redis without running the method; RED metrics count under the
 * route template; terminus reports Redis down; app.close() closes what the module holds.
 */
import * as nestCommon from '@nestjs/common';
import * as nestCore from '@nestjs/core';
import * as terminus from '@nestjs/terminus';
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as cacheModule from '../../src/cache/index.js';
import * as nestModule from '../../src/nestjs/index.js';
import * as resilience from '../../src/resilience/index.js';
import { type ServerHandle, startRedisServer, uniquePrefix } from '../harness/env.js';
import { compileLegacy, load } from './compile.js';

interface NestApp {
  listen(port: number, host: string): Promise<unknown>;
  getUrl(): Promise<string>;
  get<T = unknown>(token: unknown): T;
  close(): Promise<void>;
}
interface Fixture {
  createApp(redis: string, prefix: string): Promise<NestApp>;
  createAsyncApp(redis: string, prefix: string): Promise<NestApp>;
  PriceService: new (...a: never[]) => { calls: number; cache: unknown };
}

let fixture: Fixture;
let redis: ServerHandle;

beforeAll(async () => {
  redis = await startRedisServer();
  const { diagnostics, js } = compileLegacy('legacy/app.ts');
  expect(diagnostics).toEqual([]);
  expect(js).toContain('__metadata("design:paramtypes"');
  fixture = load<Fixture>(js, {
    'reflect-metadata': {},
    '@nestjs/common': nestCommon,
    '@nestjs/core': nestCore,
    '@nestjs/terminus': terminus,
    '../../../src/cache/index.js': cacheModule,
    '../../../src/nestjs/index.js': nestModule,
    '../../../src/resilience/index.js': resilience,
  });
}, 120_000);

afterAll(async () => {
  await redis?.stop();
});

describe('AzscaleModule.forRoot', () => {
  it('injects the primitives; @cached uses the injected cache across two instances through Redis', async () => {
    const url = `redis://127.0.0.1:${redis.port}`;
    const prefix = uniquePrefix('nest');
    const a = await fixture.createApp(url, prefix);
    const b = await fixture.createApp(url, prefix);
    await a.listen(0, '127.0.0.1');
    await b.listen(0, '127.0.0.1');
    const ua = (await a.getUrl()).replace('[::1]', '127.0.0.1');
    const ub = (await b.getUrl()).replace('[::1]', '127.0.0.1');
    try {
      const sa = a.get<{ calls: number; cache: unknown }>(fixture.PriceService);
      const sb = b.get<{ calls: number; cache: unknown }>(fixture.PriceService);
      // Each app has its own cache instance, the one the module built and injected.
      expect(sa.cache).toBeInstanceOf(cacheModule.DistributedCache);
      expect(sa.cache).toBe(a.get(nestModule.AZSCALE_CACHE));
      expect(sa.cache).not.toBe(sb.cache);
      const first = await (await fetch(`${ua}/api/price/sku-1`)).json();
      expect(first).toEqual({ sku: 'sku-1', computedBy: 1 });
      // The second instance answers from Redis: its method never ran.
      const second = await (await fetch(`${ub}/api/price/sku-1`)).json();
      expect(second).toEqual({ sku: 'sku-1', computedBy: 1 });
      expect(sa.calls).toBe(1);
      expect(sb.calls).toBe(0);
      // The entry lives under the injected cache's prefix.
      const key = `${prefix}cached:PriceService.price:v1:["sku-1"]`;
      expect(
        await (sb.cache as cacheModule.DistributedCache).get(key.slice(prefix.length)),
      ).not.toBeNull();

      const metrics = await (await fetch(`${ua}/metrics`)).text();
      expect(metrics).toMatch(
        /azscale_http_requests_total\{[^}]*route="\/api\/price\/:sku"[^}]*\} 1/,
      );
      expect(metrics).not.toContain('sku-1');

      expect((await fetch(`${ua}/health`)).status).toBe(200);
    } finally {
      await a.close();
      await b.close();
    }
    // app.close() closed what the module built.
    await expect(
      (a.get(nestModule.AZSCALE_CACHE) as cacheModule.DistributedCache).get('x'),
    ).rejects.toMatchObject({ code: 'AZS_CLOSED' });
  });

  it('terminus reports Redis down through AzscaleHealthIndicator', async () => {
    const own = await startRedisServer();
    const app = await fixture.createApp(`redis://127.0.0.1:${own.port}`, uniquePrefix('nesth'));
    await app.listen(0, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    try {
      const up = await fetch(`${url}/health`);
      expect(up.status).toBe(200);
      expect(await up.json()).toMatchObject({ status: 'ok', info: { azscale: { status: 'up' } } });
      await own.stop();
      const down = await fetch(`${url}/health`);
      expect(down.status).toBe(503);
      const body = (await down.json()) as {
        error: { azscale: { status: string; checks: Record<string, { status: string }> } };
      };
      expect(body.error.azscale.status).toBe('down');
      expect(body.error.azscale.checks.redis!.status).toBe('down');
    } finally {
      await app.close();
    }
  });

  it('forRootAsync builds the options from injected providers', async () => {
    const prefix = uniquePrefix('nesta');
    const app = await fixture.createAsyncApp(`redis://127.0.0.1:${redis.port}`, prefix);
    try {
      const cache = app.get<cacheModule.DistributedCache>(cacheModule.DistributedCache);
      expect(cache).toBe(app.get(nestModule.AZSCALE_CACHE));
      await cache.set('k', 'v');
      expect(await cache.get('k')).toBe('v');
      expect(app.get(nestModule.AZSCALE_SESSIONS)).toBeTruthy();
      expect(app.get(nestModule.AZSCALE_QUEUE)).toBeTruthy();
      expect(app.get(nestModule.AZSCALE_LIMITER)).toBeNull();
    } finally {
      await app.close();
    }
  });

  it('rejects bad options by name', () => {
    expect(() => nestModule.AzscaleModule.forRoot({ metricsPath: 'x' as never })).toThrow(
      /metricsPath/,
    );
    expect(() => nestModule.AzscaleModule.forRootAsync({} as never)).toThrow(/useFactory/);
    expect(() => new nestModule.AzscaleResources({ cache: 5 as never })).toThrow(/cache/);
  });
});

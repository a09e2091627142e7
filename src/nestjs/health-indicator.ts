import type { HealthProbe, HealthRegistry } from '../observability/health.js';
import { common, injectParams } from './nest.js';
import { AZSCALE_HEALTH } from './tokens.js';

/** What `@nestjs/terminus` expects of an indicator: `{ [key]: { status, ...details } }`. */
export type AzscaleHealthIndicatorResult = Record<
  string,
  {
    /** `up` when every critical check of the probe passed. */
    status: 'up' | 'down';
    /** More details (`checks`: each check's result). */
    [detail: string]: unknown;
  }
>;

/**
 * A `@nestjs/terminus` health indicator over the module's `HealthRegistry` (the `redis` check
 * `AzscaleModule` adds, and any you register): `up` when every critical check of the probe
 * passes, `down` with each check's result otherwise. Terminus answers 503 for `down`.
 *
 * @example
 * \@Get('health') \@HealthCheck()
 * check() { return this.terminus.check([() => this.azscale.isHealthy('azscale')]); }
 */
export class AzscaleHealthIndicator {
  constructor(private readonly health: HealthRegistry) {}

  /** Runs `probe` (readiness by default) and reports it under `key`. */
  async isHealthy(
    key = 'azscale',
    probe: HealthProbe = 'readiness',
  ): Promise<AzscaleHealthIndicatorResult> {
    const report = await this.health.run(probe);
    return { [key]: { status: report.ok ? 'up' : 'down', checks: report.checks } };
  }
}
common.Injectable()(AzscaleHealthIndicator);
injectParams(AzscaleHealthIndicator, [[common.Inject(AZSCALE_HEALTH)]]);

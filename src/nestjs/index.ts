/**
 * azscale/nestjs: `AzscaleModule.forRoot` / `forRootAsync` providing the primitives as
 * injectables (closed at shutdown), `AzscaleHealthIndicator` for `@nestjs/terminus`, and the
 * RED metrics interceptor. `@nestjs/common`, `@nestjs/core` and `reflect-metadata` are optional
 * peer dependencies: importing this subpath without them fails with a MissingDependencyError
 * naming the package.
 * @packageDocumentation
 */
export {
  AzscaleModule,
  type AzscaleDynamicModule,
  type AzscaleModuleAsyncOptions,
} from './module.js';
export { AzscaleResources, type AzscaleModuleOptions } from './resources.js';
export { AzscaleHealthIndicator, type AzscaleHealthIndicatorResult } from './health-indicator.js';
export { AzscaleMetricsInterceptor } from './interceptor.js';
export * from './tokens.js';
export { RED_METRICS, UNMATCHED_ROUTE } from '../frameworks/red.js';
export {
  AzscaleError,
  MissingDependencyError,
  ValidationError,
  isMissingDependencyError,
} from '../core/errors.js';

import { requirePeer } from '../frameworks/peer.js';

/** The parts of `@nestjs/common` the adapter uses (its decorators are applied by hand). */
export interface NestCommon {
  Module(meta: object): ClassDecorator;
  Injectable(): ClassDecorator;
  Inject(
    token: unknown,
  ): (target: object, key: string | symbol | undefined, index?: number) => void;
  Optional(): (target: object, key: string | symbol | undefined, index?: number) => void;
  Controller(prefix?: string): ClassDecorator;
  Get(path?: string): MethodDecorator;
  Res(): (target: object, key: string | symbol | undefined, index: number) => void;
}

/** The parts of `@nestjs/core` the adapter uses. */
export interface NestCore {
  APP_INTERCEPTOR: string;
}

// Loaded when azscale/nestjs is imported, so a missing framework fails at the import line.
// NestJS 11+ is ESM-only; require() of it needs Node >= 20.19 (require(esm)), as NestJS itself.
export const common = requirePeer<NestCommon>('@nestjs/common', 'azscale/nestjs');
export const core = requirePeer<NestCore>('@nestjs/core', 'azscale/nestjs');
requirePeer<unknown>('reflect-metadata', 'azscale/nestjs');

/** Applies legacy parameter decorators to constructor parameters (what `@Inject(x)` compiles to). */
export function injectParams(target: object, params: readonly (readonly unknown[])[]): void {
  params.forEach((decorators, index) => {
    for (const d of decorators) {
      (d as (t: object, k: undefined, i: number) => void)(target, undefined, index);
    }
  });
}

/**
 * Validation of the arguments of {@link DatabaseRouter}'s calls at the public edge: the
 * statement, its parameters, the read-your-writes context and the isolation level.
 */
import { ValidationError, describeValue } from '../core/errors.js';
import { isWalLsn } from './lsn.js';
import type { DbContext, DbTransactionOptions } from './types.js';

const ISOLATION = new Set(['read committed', 'repeatable read', 'serializable']);

/** How far ahead of this machine's clock a ctx's write time may be (another machine's clock). */
export const CLOCK_SKEW_MS = 5000;

/** The statement's text; a string or a pg QueryConfig `{ text, values }`. */
export function checkQuery(sql: unknown): string {
  if (typeof sql === 'string' && sql.length > 0) return sql;
  if (
    typeof sql === 'object' &&
    sql !== null &&
    typeof (sql as { text?: unknown }).text === 'string' &&
    (sql as { text: string }).text.length > 0
  ) {
    return (sql as { text: string }).text;
  }
  throw new ValidationError(
    `sql must be a non-empty string or a pg QueryConfig { text, values }, received ${describeValue(sql)}`,
    { option: 'sql' },
  );
}

/** `params` is an array or undefined. */
export function checkParams(params: unknown): void {
  if (params !== undefined && !Array.isArray(params)) {
    throw new ValidationError(`params must be an array, received ${describeValue(params)}`, {
      option: 'params',
    });
  }
}

/** `ctx` is a plain object whose fields, when present, have the types the router writes. */
export function checkCtx(ctx: unknown): void {
  if (ctx === undefined) return;
  if (typeof ctx !== 'object' || ctx === null || Array.isArray(ctx)) {
    throw new ValidationError(
      `ctx must be a plain object (start with {} and keep it per user or session), received ${describeValue(ctx)}`,
      { option: 'ctx' },
    );
  }
  const c = ctx as DbContext;
  if (c.lsn !== undefined && !isWalLsn(c.lsn)) {
    throw new ValidationError(
      `ctx.lsn must be a pg_lsn like '0/3000148', received ${describeValue(c.lsn)}`,
      {
        option: 'ctx.lsn',
      },
    );
  }
  if (
    c.timeline !== undefined &&
    (typeof c.timeline !== 'number' || !Number.isInteger(c.timeline) || c.timeline < 1)
  ) {
    throw new ValidationError(
      `ctx.timeline must be a PostgreSQL timeline ID (a positive integer), received ${describeValue(c.timeline)}`,
      { option: 'ctx.timeline' },
    );
  }
  if (
    c.lastWriteAtMs !== undefined &&
    (typeof c.lastWriteAtMs !== 'number' || !Number.isFinite(c.lastWriteAtMs))
  ) {
    throw new ValidationError(
      `ctx.lastWriteAtMs must be epoch milliseconds, received ${describeValue(c.lastWriteAtMs)}`,
      { option: 'ctx.lastWriteAtMs' },
    );
  }
}

/** The statement on one line, cut to 60 characters, for messages. */
export function describeSql(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > 60 ? `${one.slice(0, 57)}...` : one;
}

/** The isolation level of a transaction, when given. */
export function checkIsolation(iso: unknown): DbTransactionIsolation | undefined {
  if (iso !== undefined && (typeof iso !== 'string' || !ISOLATION.has(iso))) {
    throw new ValidationError(
      `isolation must be 'read committed', 'repeatable read' or 'serializable', received ${describeValue(iso)}`,
      { option: 'isolation' },
    );
  }
  return iso as DbTransactionIsolation | undefined;
}

type DbTransactionIsolation = NonNullable<DbTransactionOptions['isolation']>;

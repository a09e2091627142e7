/**
 * SQL errors pass through as pg's `DatabaseError` (issue 6: same class, same SQLSTATE `code`),
 * but not with everything the server said about the rows involved: `detail` ("Key
 * (email)=(ada@example.com) already exists."), `where`, `internalQuery`, and for data
 * exceptions (SQLSTATE class 22) the rejected value quoted in the message itself (`invalid
 * input syntax for type integer: "..."`). A logger that prints the error would print them.
 * They are removed here, on the error object itself, before any caller sees it.
 *
 * The scrubbed error also counts as an azscale error (`isAzscaleError(e)`, `e instanceof
 * AzscaleError`: the brand those checks read) with a `context` of the SQLSTATE and the names
 * the server gave, while its `code` stays the SQLSTATE that issue 6 promises.
 */

/** Fields of pg's DatabaseError that can quote row values or statement parameters. */
const VALUE_FIELDS = ['detail', 'where', 'internalQuery', 'internalPosition'] as const;

/** The server's message without the values it may quote. */
export function safeSqlMessage(message: string, sqlState: string): string {
  // Class 22 (data exception) quotes the offending value; other classes quote identifiers,
  // which are worth keeping. A value may hold quotes of its own: cut to the last one.
  return sqlState.startsWith('22') ? message.replace(/"[\s\S]*"/g, '[value]') : message;
}

/** The brand `isAzscaleError` reads (a registry symbol: the same in ESM and CJS copies). */
const BRAND = Symbol.for('azscale.error');
/** pg fields that name schema objects, never row values. */
const NAME_FIELDS = ['schema', 'table', 'column', 'dataType', 'constraint', 'severity'] as const;

/** Strips values from `e`, a SQL error the server sent, in place; returns it. */
export function scrubSqlError<E extends Error & { code: string }>(e: E): E {
  const o = e as unknown as Record<string | symbol, unknown>;
  const context: Record<string, unknown> = { sqlState: e.code };
  for (const f of NAME_FIELDS) if (typeof o[f] === 'string') context[f] = o[f];
  Object.defineProperty(o, BRAND, { value: true });
  Object.defineProperty(o, 'kinds', { value: Object.freeze(['AZS_ERROR']) });
  if (o.context === undefined) o.context = context;
  for (const f of VALUE_FIELDS) if (o[f] !== undefined) o[f] = undefined;
  const message = safeSqlMessage(e.message, e.code);
  if (message !== e.message) {
    const old = e.message;
    e.message = message;
    // The stack's first line was written with the old message.
    if (typeof e.stack === 'string') e.stack = e.stack.split(old).join(message);
  }
  return e;
}

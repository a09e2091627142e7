/**
 * A cheap static check that catches the usual "write sent as a read" mistakes before they reach a
 * node. It is a guard, not a parser: a SELECT that calls a writing function is not seen here.
 * On a replica the server refuses such a statement anyway (SQLSTATE 25006), which the router
 * also reports as a QueryRoutingError.
 */

const WRITE_WORDS = new Set([
  'INSERT',
  'UPDATE',
  'DELETE',
  'MERGE',
  'UPSERT',
  'CREATE',
  'DROP',
  'ALTER',
  'TRUNCATE',
  'GRANT',
  'REVOKE',
  'COPY',
  'VACUUM',
  'ANALYZE',
  'ANALYSE',
  'REINDEX',
  'CLUSTER',
  'COMMENT',
  'LOCK',
  'CALL',
  'DO',
  'REFRESH',
  'SECURITY',
  'IMPORT',
  'REASSIGN',
  'NOTIFY',
  'CHECKPOINT',
]);

// A data-modifying statement inside a WITH: `AS (INSERT ...`, `AS MATERIALIZED (DELETE ...`, or
// the main statement after the CTE list: `) UPDATE ...`.
const CTE_WRITE_RE =
  /(?:\bAS\s*(?:NOT\s+)?(?:MATERIALIZED\s*)?\(\s*|\)\s*)(INSERT|UPDATE|DELETE|MERGE)\b/i;
// Row locks need a writable node; sequence functions write.
const SELECT_WRITE_RE =
  /\bFOR\s+(?:NO\s+KEY\s+)?UPDATE\b|\bFOR\s+(?:KEY\s+)?SHARE\b|\b(?:nextval|setval)\s*\(/i;

const EXPLAIN_ANALYZE_RE = /\bANALY[SZ]E\b/i;
const EXPLAINED_WRITE_RE = /\b(?:INSERT|UPDATE|DELETE|MERGE)\b/i;

/** Skips whitespace, comments and opening parentheses; returns the index of the first word. */
function firstWordStart(sql: string): number {
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === 40 /* ( */) {
      i++;
    } else if (c === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      const nl = sql.indexOf('\n', i);
      i = nl === -1 ? n : nl + 1;
    } else if (c === 47 /* / */ && sql.charCodeAt(i + 1) === 42 /* * */) {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? n : end + 2;
    } else {
      break;
    }
  }
  return i;
}

/**
 * The statement's leading keyword in upper case (`SELECT`, `INSERT`, `WITH`, ...), after any
 * comments and parentheses; `''` when there is none.
 */
export function leadingKeyword(sql: string): string {
  const start = firstWordStart(sql);
  let end = start;
  while (end < sql.length) {
    const c = sql.charCodeAt(end) | 0x20;
    if (c < 97 || c > 122) break;
    end++;
  }
  return sql.slice(start, end).toUpperCase();
}

/**
 * True when `sql` evidently changes data or schema (INSERT/UPDATE/DELETE/DDL, a data-modifying
 * CTE, `SELECT ... FOR UPDATE`, `nextval()`), so it must not be sent to a replica.
 */
export function isWriteSql(sql: string): boolean {
  const known = verdicts.get(sql);
  if (known !== undefined) return known;
  const v = classify(sql);
  // Applications send a bounded set of statement texts; the cache is cleared if one does not.
  if (verdicts.size >= 2000) verdicts.clear();
  verdicts.set(sql, v);
  return v;
}

const verdicts = new Map<string, boolean>();

function classify(sql: string): boolean {
  const word = leadingKeyword(sql);
  if (word === 'SELECT' || word === 'VALUES' || word === 'TABLE') return SELECT_WRITE_RE.test(sql);
  if (word === 'WITH') return CTE_WRITE_RE.test(sql) || SELECT_WRITE_RE.test(sql);
  // EXPLAIN ANALYZE runs the statement it explains.
  if (word === 'EXPLAIN') return EXPLAIN_ANALYZE_RE.test(sql) && EXPLAINED_WRITE_RE.test(sql);
  return WRITE_WORDS.has(word);
}

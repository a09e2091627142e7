/**
 * Core: our JSON codec (size check + safe parse) vs bare JSON.stringify/JSON.parse. Decode is
 * JSON.parse plus a scan for `__proto__` / `\u`; the walk that strips own `__proto__` keys runs
 * only when the scan hits, which the last two cases force.
 */
import { JsonCodec } from '../src/core/codec.js';
import { type BenchRow, type BenchSuite, compare } from './lib.js';

const suite: BenchSuite = async () => {
  const codec = new JsonCodec();
  const value = {
    messages: Array.from({ length: 20 }, (_, i) => ({
      role: i % 2 ? 'assistant' : 'user',
      content: `message ${i} `.repeat(8),
    })),
    meta: { user: 'u-1', started: 1700000000 },
  };
  const text = JSON.stringify(value);
  const rows: BenchRow[] = [];
  rows.push(
    await compare({
      group: 'core',
      case: 'encode 20-message session',
      ours: () => codec.encode(value),
      theirsLabel: 'JSON.stringify',
      theirs: () => JSON.stringify(value),
      iterations: 20000,
      maxRatio: 2,
    }),
  );
  rows.push(
    await compare({
      group: 'core',
      case: 'decode 20-message session',
      ours: () => codec.decode(text),
      theirsLabel: 'JSON.parse',
      theirs: () => JSON.parse(text),
      iterations: 20000,
      maxRatio: 1.1,
    }),
  );
  // Keys named like Object.prototype members are ordinary data (no reviver, no walk).
  const hostile = JSON.stringify({
    ...value,
    schema: { constructor: 'String', prototype: { toString: 'x' }, hasOwnProperty: true },
  });
  rows.push(
    await compare({
      group: 'core',
      case: 'decode session with constructor/prototype keys',
      ours: () => codec.decode(hostile),
      theirsLabel: 'JSON.parse',
      theirs: () => JSON.parse(hostile),
      iterations: 20000,
      maxRatio: 1.2,
    }),
  );
  // Text with a \u escape (a control character in a message): the walk runs.
  const escaped = JSON.stringify({ ...value, note: 'bell \u0007 in text' });
  rows.push(
    await compare({
      group: 'core',
      case: 'decode session with a \\u escape (walk)',
      ours: () => codec.decode(escaped),
      theirsLabel: 'JSON.parse',
      theirs: () => JSON.parse(escaped),
      iterations: 20000,
    }),
  );
  return rows;
};
export default suite;

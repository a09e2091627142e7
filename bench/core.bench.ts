/** Core: our JSON codec (size check + safe parse) vs bare JSON.stringify/JSON.parse. */
import { JsonCodec } from '../src/core/codec.js';
import { type BenchRow, type BenchSuite, compare } from './lib.js';

const suite: BenchSuite = async () => {
  const codec = new JsonCodec();
  const value = {
    messages: Array.from({ length: 20 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `message ${i} `.repeat(8) })),
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
      maxRatio: 1.2,
    }),
  );
  return rows;
};
export default suite;

/**
 * Two "instances" of a chat service write the same session at the same time, the seed's way
 * (get, append, save) and with appendMessage. Run: `node --import tsx examples/session/concurrent-turns.ts`
 * (in memory) or with REDIS_URL=redis://localhost:6379 to use Redis.
 */
import { DistributedSessionManager, newSessionId } from '../../src/session/index.js';

const redis = process.env.REDIS_URL;
// Two managers = two service instances sharing one Redis (or, without REDIS_URL, one store).
const a = new DistributedSessionManager(redis ? { redis } : {});
const b = redis ? new DistributedSessionManager({ redis }) : a;

async function seedStyle(s: DistributedSessionManager, id: string, content: string) {
  const session = await s.getSession(id);
  await new Promise((r) => setTimeout(r, Math.random() * 5)); // the model thinks
  session.messages.push({ role: 'user', content });
  await s.saveSession(id, session); // last writer wins: a concurrent turn is lost
}

const turns = Array.from({ length: 20 }, (_, i) => `turn ${i}`);

const racy = newSessionId();
await Promise.all(turns.map((t, i) => seedStyle(i % 2 ? a : b, racy, t)));
console.log(
  'get + save:    ',
  (await a.getSession(racy)).messages.length,
  'of',
  turns.length,
  'kept',
);

const safe = newSessionId();
await Promise.all(
  turns.map((t, i) => (i % 2 ? a : b).appendMessage(safe, { role: 'user', content: t })),
);
console.log(
  'appendMessage: ',
  (await a.getSession(safe)).messages.length,
  'of',
  turns.length,
  'kept',
);

await a.deleteSession(racy);
await a.deleteSession(safe);
await a.close();
if (b !== a) await b.close();

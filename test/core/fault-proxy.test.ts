import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { servers, uniquePrefix } from '../harness/env.js';
import {
  type ClusterFaultProxy,
  type FaultProxy,
  startClusterFaultProxy,
  startFaultProxy,
} from '../harness/fault-proxy.js';

function target(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function proxied(): Promise<{ proxy: FaultProxy; client: Redis; direct: Redis }> {
  const proxy = await startFaultProxy({ target: target(servers().redisUrl) });
  const client = new Redis(proxy.url, { lazyConnect: true });
  await client.connect();
  const direct = new Redis(servers().redisUrl);
  cleanups.push(
    () => proxy.close(),
    () => client.disconnect(),
    () => direct.disconnect(),
  );
  return { proxy, client, direct };
}

describe('fault proxy (standalone)', () => {
  it('forwards commands and replies, including large and nested ones', async () => {
    const { client, proxy } = await proxied();
    const k = `${uniquePrefix('fp')}big`;
    const big = 'x'.repeat(3 * 1024 * 1024);
    await client.set(k, big);
    expect(await client.get(k)).toBe(big);
    await client.rpush(`${k}:l`, 'a', 'b', 'c');
    const res = await client.multi().lrange(`${k}:l`, 0, -1).get(k).exec();
    expect(res?.[0]).toEqual([null, ['a', 'b', 'c']]);
    expect(res?.[1]?.[1]).toHaveLength(big.length);
    expect(proxy.connections).toBe(1);
    expect(proxy.commands).toBeGreaterThan(4);
    await client.del(k, `${k}:l`);
  });

  it('drops the matching reply, cuts the connection, and ioredis resends the command', async () => {
    const { client, direct, proxy } = await proxied();
    const p = uniquePrefix('fp');
    const dropped = proxy.dropNextReply('INCR');
    // A pipeline: the INCR whose reply is lost, then commands the proxy must withhold.
    const [a, b, c] = await Promise.all([
      client.incr(`${p}a`),
      client.incrby(`${p}b`, 10),
      client.get(`${p}a`),
    ]);
    expect((await dropped)?.name).toBe('INCR');
    expect(proxy.dropped).toBe(1);
    // The lost-reply INCR ran twice (once before the cut, once resent) ...
    expect(a).toBe(2);
    expect(await direct.get(`${p}a`)).toBe('2');
    // ... while the commands queued behind it never reached the server before the cut.
    expect(b).toBe(10);
    expect(c).toBe('2');
    await direct.del(`${p}a`, `${p}b`);
  });

  it('matches by predicate and leaves other commands alone', async () => {
    const { client, direct, proxy } = await proxied();
    const p = uniquePrefix('fp');
    const script = "return redis.call('INCR', KEYS[1])";
    await client.set(`${p}other`, '1');
    const dropped = proxy.dropNextReply(
      (cmd) =>
        (cmd.name === 'EVAL' || cmd.name === 'EVALSHA') && cmd.args[2]?.toString() === `${p}n`,
    );
    await client.eval(script, 1, `${p}unrelated`);
    const n = await client.eval(script, 1, `${p}n`);
    expect((await dropped)?.args[2]?.toString()).toBe(`${p}n`);
    expect(n).toBe(2);
    expect(await direct.get(`${p}unrelated`)).toBe('1');
    await direct.del(`${p}n`, `${p}unrelated`, `${p}other`);
  });

  it('cutAll closes every connection and the client reconnects', async () => {
    const { client, proxy } = await proxied();
    expect(await client.ping()).toBe('PONG');
    const closed = new Promise((r) => client.once('close', r));
    proxy.cutAll();
    await closed;
    expect(await client.ping()).toBe('PONG');
  });

  it('setDown refuses connections until lifted', async () => {
    const { proxy } = await proxied();
    proxy.setDown(true);
    const r = new Redis(proxy.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    r.on('error', () => {});
    cleanups.push(() => r.disconnect());
    await expect(r.connect()).rejects.toThrow();
    proxy.setDown(false);
    const r2 = new Redis(proxy.url);
    cleanups.push(() => r2.disconnect());
    expect(await r2.ping()).toBe('PONG');
  });

  it("setDown(true, 'hang') holds connections open without answering", async () => {
    const proxy = await startFaultProxy({ target: target(servers().redisUrl) });
    cleanups.push(() => proxy.close());
    proxy.setDown(true, 'hang');
    const r = new Redis(proxy.url, { lazyConnect: true, retryStrategy: () => null });
    r.on('error', () => {});
    cleanups.push(() => r.disconnect());
    r.connect().catch(() => {});
    await expect.poll(() => proxy.connections, { timeout: 5000 }).toBe(1);
    // TCP is up but the ready check never gets an answer: ioredis waits in 'connect' (its
    // connectTimeout covers only the TCP handshake), so only the caller can end it.
    await new Promise((res) => setTimeout(res, 500));
    expect(r.status).toBe('connect');
    r.disconnect();
    await expect.poll(() => proxy.connections, { timeout: 5000 }).toBe(0);
    const accepted = proxy.accepted;
    proxy.setDown(false);
    const r2 = new Redis(proxy.url);
    cleanups.push(() => r2.disconnect());
    expect(await r2.ping()).toBe('PONG');
    expect(proxy.accepted).toBe(accepted + 1);
  });

  it('adds latency to every command', async () => {
    const { client, proxy } = await proxied();
    proxy.setLatencyMs(300);
    const t0 = performance.now();
    expect(await client.ping()).toBe('PONG');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    proxy.setLatencyMs(0);
    expect(await client.ping()).toBe('PONG');
  });

  it('forwards pub/sub connections raw and never drops on them', async () => {
    const { proxy } = await proxied();
    const sub = new Redis(proxy.url);
    const pub = new Redis(proxy.url);
    cleanups.push(
      () => sub.disconnect(),
      () => pub.disconnect(),
    );
    const ch = `${uniquePrefix('fp')}ch`;
    await sub.subscribe(ch);
    const got = new Promise<string>((r) => sub.once('message', (_c, m) => r(m)));
    const dropped = proxy.dropNextReply('PUBLISH');
    expect(await pub.publish(ch, 'hello')).toBe(1);
    expect(await got).toBe('hello');
    expect((await dropped)?.name).toBe('PUBLISH');
  });
});

describe('fault proxy (cluster, via natMap)', () => {
  let cp: ClusterFaultProxy;
  afterEach(async () => {
    await cp?.close();
  });

  it('routes every node through its proxy and drops a reply on any node', async () => {
    cp = await startClusterFaultProxy(servers().clusterNodes);
    const cluster = new Cluster(cp.startupNodes, { natMap: cp.natMap });
    const direct = new Cluster(servers().clusterNodes);
    cleanups.push(
      () => cluster.disconnect(),
      () => direct.disconnect(),
    );
    const p = uniquePrefix('fpc');
    // Keys spread over every master.
    for (let i = 0; i < 30; i++) await cluster.set(`${p}${i}`, String(i));
    for (const proxy of cp.proxies) expect(proxy.commands).toBeGreaterThan(1);
    // Every connection the cluster client holds goes to a proxy port.
    const proxyPorts = new Set(cp.proxies.map((x) => x.port));
    for (const node of cluster.nodes('all'))
      expect(proxyPorts.has(node.options.port ?? 0)).toBe(true);

    const dropped = cp.dropNextReply('INCR');
    expect(await cluster.incr(`${p}n`)).toBe(2);
    expect((await dropped)?.name).toBe('INCR');
    expect(await direct.get(`${p}n`)).toBe('2');
    for (let i = 0; i < 30; i++) await direct.del(`${p}${i}`);
    await direct.del(`${p}n`);
  });
});

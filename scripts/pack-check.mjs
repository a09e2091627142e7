#!/usr/bin/env node
// Packaging check: `npm pack`, install the tarball into a throwaway app, then there
//  - import every subpath from an .mjs file and require it from a .cjs file, and use a few
//    exports at run time (the CJS build must work, not only load);
//  - check that subpaths do not load what they must not (cache: no pg; scaling: no ioredis, no pg);
//  - check that an error thrown by the CJS copy is recognised by the ESM copy's guards;
//  - type-check a .ts file that imports every subpath under moduleResolution nodenext and bundler.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const allSubpaths = Object.keys(pkg.exports)
  .filter((k) => k !== './package.json')
  .map((k) => (k === '.' ? 'azscale' : `azscale/${k.slice(2)}`));
// Framework adapters and the optional peer package whose absence each must name.
const frameworkPeers = {
  'azscale/express': 'express',
  'azscale/fastify': 'fastify',
  'azscale/nestjs': '@nestjs/common',
  'azscale/hono': 'hono',
};
const frameworkPackages = [
  'express',
  'express-session',
  'fastify',
  '@fastify/session',
  '@nestjs/common',
  '@nestjs/core',
  'reflect-metadata',
  'rxjs',
  'hono',
];
const subpaths = allSubpaths.filter((s) => !(s in frameworkPeers));

const sh = (cmd, args, opts = {}) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...opts });

const app = mkdtempSync(join(tmpdir(), 'azs-pack-'));
let ok = false;
try {
  // AZS_PACK_TARBALL: a tarball already packed (.ci/run packs once and checks it under each Node).
  const tgz = process.env.AZS_PACK_TARBALL
    ? resolve(process.env.AZS_PACK_TARBALL)
    : join(
        app,
        sh('npm', ['pack', '--silent', '--pack-destination', app], { cwd: root })
          .trim()
          .split('\n')
          .pop(),
      );
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'azs-pack-app', private: true }));
  // A TypeScript user has @types/node of the Node they run; the types of pg come with azscale
  // (its public types use them).
  const major = Number(process.versions.node.split('.')[0]);
  console.log(`pack-check under Node ${process.version} (@types/node@^${major})`);
  sh('npm', ['install', '--no-audit', '--no-fund', '--silent', tgz, `@types/node@^${major}`], {
    cwd: app,
  });

  // 0. The adapters' optional peers are not installed yet: importing azscale/ai or
  //    azscale/langchain must fail with AZS_MISSING_DEPENDENCY naming the package.
  for (const [sub, peer] of [
    ['azscale/ai', 'ai'],
    ['azscale/langchain', '@langchain/core'],
    ['azscale/testing', 'vitest'],
  ]) {
    writeFileSync(
      join(app, 'peer.mjs'),
      `try { await import(${JSON.stringify(sub)}); console.error('no error'); process.exit(1); } catch (e) {
  if (e.code !== 'AZS_MISSING_DEPENDENCY' || e.context.package !== ${JSON.stringify(peer)} || !e.message.includes(${JSON.stringify(peer)})) { console.error(e); process.exit(1); }
}
try { (await import('node:module')).createRequire(import.meta.url)(${JSON.stringify(sub)}); process.exit(1); } catch (e) {
  if (e.code !== 'AZS_MISSING_DEPENDENCY' || e.context.package !== ${JSON.stringify(peer)}) { console.error(e); process.exit(1); }
}
`,
    );
    sh('node', ['peer.mjs'], { cwd: app });
    console.log(`${sub} without ${peer}: AZS_MISSING_DEPENDENCY naming it (ESM and CJS)`);
  }
  // vitest at the version the suites are tested with here (azscale/testing's optional peer).
  const vitestVersion = pkg.devDependencies.vitest;
  sh(
    'npm',
    ['install', '--no-audit', '--no-fund', '--silent', 'ai@^6', '@langchain/core@^1', `vitest@${vitestVersion}`],
    { cwd: app },
  );

  // 1. ESM import of every subpath.
  writeFileSync(
    join(app, 'esm.mjs'),
    `const subpaths = ${JSON.stringify(subpaths)};
for (const s of subpaths) {
  const m = await import(s);
  const names = Object.keys(m);
  if (names.length === 0) throw new Error(s + ' (ESM) exports nothing');
  console.log('import ' + s + ': ' + names.length + ' exports');
}
const root = await import('azscale');
if (typeof root.isAzscaleError !== 'function') throw new Error('root lacks isAzscaleError');
`,
  );
  console.log(sh('node', ['esm.mjs'], { cwd: app }).trim());

  // 1b. Without their frameworks, the adapter subpaths fail at import with an AZS error naming
  // the missing package (ESM and CJS).
  writeFileSync(
    join(app, 'missing.mjs'),
    `import { createRequire } from 'node:module';
const req = createRequire(import.meta.url);
const peers = ${JSON.stringify(frameworkPeers)};
for (const [s, pkgName] of Object.entries(peers)) {
  for (const [kind, load] of [['ESM', () => import(s)], ['CJS', async () => req(s)]]) {
    let err;
    try { await load(); } catch (e) { err = e; }
    if (!err || err.code !== 'AZS_MISSING_DEPENDENCY' || !err.message.includes(pkgName)) {
      throw new Error(s + ' (' + kind + ') without ' + pkgName + ': ' + (err ? err.code + ' ' + err.message : 'loaded'));
    }
  }
  console.log(s + ' without its framework: AZS_MISSING_DEPENDENCY naming ' + pkgName + ' (ESM and CJS)');
}
`,
  );
  console.log(sh('node', ['missing.mjs'], { cwd: app }).trim());

  // With the frameworks installed, the adapters load (ESM and CJS) and work at run time.
  const devVersion = (n) => pkg.devDependencies[n] ?? 'latest';
  sh(
    'npm',
    ['install', '--no-audit', '--no-fund', '--silent', ...frameworkPackages.map((n) => `${n}@${devVersion(n)}`)],
    { cwd: app },
  );
  writeFileSync(
    join(app, 'frameworks.mjs'),
    `import { createRequire } from 'node:module';
const req = createRequire(import.meta.url);
for (const s of ${JSON.stringify(Object.keys(frameworkPeers))}) {
  const e = Object.keys(await import(s)).length;
  const c = Object.keys(req(s)).length;
  if (e === 0 || c === 0) throw new Error(s + ' exports nothing');
  console.log('import/require ' + s + ': ' + e + '/' + c + ' exports');
}
const { ExpressSessionStore, requestMetrics } = req('azscale/express');
const { Metrics } = req('azscale/observability');
const store = new ExpressSessionStore();
await new Promise((r, j) => store.set('sid-1', { cookie: { maxAge: 60000 }, user: 'a' }, (e) => (e ? j(e) : r())));
const got = await new Promise((r, j) => store.get('sid-1', (e, v) => (e ? j(e) : r(v))));
if (got.user !== 'a') throw new Error('ExpressSessionStore via CJS');
await store.close();
requestMetrics({ metrics: new Metrics() });
const { AzscaleModule } = await import('azscale/nestjs');
if (!AzscaleModule.forRoot({}).providers.length) throw new Error('AzscaleModule.forRoot');
console.log('adapters run: ExpressSessionStore (CJS), requestMetrics, AzscaleModule.forRoot (ESM)');
`,
  );
  console.log(sh('node', ['frameworks.mjs'], { cwd: app }).trim());

  // 2. CJS require of every subpath.
  writeFileSync(
    join(app, 'cjs.cjs'),
    `const subpaths = ${JSON.stringify(subpaths)};
for (const s of subpaths) {
  const m = require(s);
  const names = Object.keys(m);
  if (names.length === 0) throw new Error(s + ' (CJS) exports nothing');
  console.log('require ' + s + ': ' + names.length + ' exports');
}
`,
  );
  console.log(sh('node', ['cjs.cjs'], { cwd: app }).trim());

  // 3. Run-time use from the CJS build (p-limit is ESM-only: it must be bundled, not required).
  writeFileSync(
    join(app, 'cjs-run.cjs'),
    `const az = require('azscale');
(async () => {
  if (az.ConcurrencyLimiter) {
    const l = new az.ConcurrencyLimiter({ concurrency: 2 });
    const out = await Promise.all([1, 2, 3].map((n) => l.run(async () => n * 2)));
    if (out.join(',') !== '2,4,6') throw new Error('ConcurrencyLimiter via CJS returned ' + out);
    console.log('CJS ConcurrencyLimiter.run ok');
  } else {
    console.log('CJS ConcurrencyLimiter not exported yet');
  }
  if (az.DistributedCache) {
    const c = new az.DistributedCache();
    await c.set('k', 'v');
    if ((await c.get('k')) !== 'v') throw new Error('DistributedCache via CJS');
    await c.close();
    console.log('CJS DistributedCache ok');
  }
  try { az.validateId(''); throw new Error('no throw'); } catch (e) {
    if (!az.isValidationError(e)) throw e;
  }
  console.log('CJS validateId/isValidationError ok');
})().catch((e) => { console.error(e); process.exit(1); });
`,
  );
  console.log(sh('node', ['cjs-run.cjs'], { cwd: app }).trim());

  // 4. ESM and CJS copies in one process recognise each other's errors.
  writeFileSync(
    join(app, 'dual.mjs'),
    `import { createRequire } from 'node:module';
import * as esm from 'azscale';
const cjs = createRequire(import.meta.url)('azscale');
if (esm.ValidationError === cjs.ValidationError) throw new Error('expected two copies');
let e; try { cjs.validateId(''); } catch (x) { e = x; }
if (!esm.isValidationError(e)) throw new Error('ESM guard misses CJS error');
if (!(e instanceof esm.ValidationError)) throw new Error('ESM instanceof misses CJS error');
if (!(e instanceof esm.AzscaleError)) throw new Error('ESM base instanceof misses CJS error');
if (e instanceof esm.BackendUnavailableError) throw new Error('wrong class matched');
console.log('ESM/CJS dual copies: guards and instanceof agree');
`,
  );
  console.log(sh('node', ['dual.mjs'], { cwd: app }).trim());

  // 5. What each subpath loads (CJS require.cache; ESM via a resolve hook).
  const base = { 'azscale/cache': ['pg', 'pg-pool'], 'azscale/scaling': ['ioredis', 'pg', 'pg-pool'], 'azscale/session': ['pg', 'pg-pool'], 'azscale/resilience': ['pg', 'pg-pool'], 'azscale/worker': ['pg', 'pg-pool'], 'azscale/observability': ['ioredis', 'pg', 'pg-pool'], azscale: [], 'azscale/db': [] };
  // No subpath but its own loads a framework (they are installed now, so this can fail).
  const fwLoaded = { 'azscale/express': ['fastify', '@nestjs/common', 'hono'], 'azscale/fastify': ['express', 'express-session', '@nestjs/common', 'hono'], 'azscale/hono': ['express', 'fastify', '@nestjs/common'], 'azscale/nestjs': ['fastify', 'hono', 'express-session'] };
  const forbidden = { ...Object.fromEntries(Object.entries(base).map(([k, v]) => [k, [...v, ...frameworkPackages]])), ...fwLoaded };
  writeFileSync(
    join(app, 'hooks.mjs'),
    `export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  const m = r.url.match(/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//);
  if (m) globalThis.__port?.postMessage(m[1]);
  return r;
}
export async function initialize({ port }) { globalThis.__port = port; }
`,
  );
  // Only azscale/ai and azscale/langchain may load the AI SDK or LangChain.
  for (const sub of subpaths) {
    if (sub === 'azscale/ai' || sub === 'azscale/langchain') continue;
    forbidden[sub] = [...(forbidden[sub] ?? []), 'ai', '@ai-sdk/provider', '@langchain/core'];
  }
  // No subpath loads vitest; azscale/testing only checks that it is installed (it takes the
  // API from the vitest worker it runs in), and loads no database driver or framework.
  for (const sub of allSubpaths) {
    if (sub === 'azscale/testing') continue;
    forbidden[sub] = [...(forbidden[sub] ?? []), 'vitest'];
  }
  forbidden['azscale/testing'] = [...(forbidden['azscale/testing'] ?? []), 'pg', 'pg-pool', ...frameworkPackages];
  for (const [sub, bad] of Object.entries(forbidden)) {
    writeFileSync(
      join(app, 'load-cjs.cjs'),
      `require(${JSON.stringify(sub)});
const loaded = Object.keys(require.cache).map((p) => (p.match(/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//) || [])[1]).filter(Boolean);
const bad = ${JSON.stringify(bad)}.filter((b) => loaded.includes(b));
if (bad.length) { console.error(${JSON.stringify(sub)} + ' (CJS) loaded ' + bad.join(', ')); process.exit(1); }
`,
    );
    sh('node', ['load-cjs.cjs'], { cwd: app });
    writeFileSync(
      join(app, 'load-esm.mjs'),
      `import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const loaded = new Set();
port1.on('message', (m) => loaded.add(m));
port1.unref();
register('./hooks.mjs', import.meta.url, { data: { port: port2 }, transferList: [port2] });
await import(${JSON.stringify(sub)});
await new Promise((r) => setTimeout(r, 100));
const bad = ${JSON.stringify(bad)}.filter((b) => loaded.has(b));
if (bad.length) { console.error(${JSON.stringify(sub)} + ' (ESM) loaded ' + bad.join(', ')); process.exit(1); }
if (!loaded.has('azscale')) { console.error('resolve hook saw nothing'); process.exit(1); }
`,
    );
    sh('node', ['load-esm.mjs'], { cwd: app });
    console.log(`${sub} loads none of: ${bad.join(', ')} (ESM and CJS)`);
  }

  // 6. The `azscale` command from the installed package.
  const cliOut = sh(join(app, 'node_modules', '.bin', 'azscale'), ['preset', 'large', '--json'], {
    cwd: app,
  });
  const preset = JSON.parse(cliOut);
  if (preset.workers !== 8) throw new Error(`azscale preset large printed ${cliOut}`);
  console.log('bin: azscale preset large ok');

  // 6b. azscale/dashboard from the tarball, ESM and CJS: serve it, fetch the page and every
  //     asset it names (they live inside the package: no CDN, nothing read from disk), gzipped
  //     under 200 KB.
  const dashboardCheck = (load) => `${load}
const http = require('node:http');
const { gunzipSync } = require('node:zlib');
const dash = createDashboard({ title: 'pack' });
const srv = http.createServer((req, res) => dash(req, res)).listen(0, '127.0.0.1', async () => {
  const base = 'http://127.0.0.1:' + srv.address().port + '/dashboard/';
  try {
    const page = await fetch(base);
    const html = await page.text();
    if (page.status !== 200 || !page.headers.get('content-security-policy')) throw new Error('page: ' + page.status);
    const assets = [...html.matchAll(/(?:src|href)="(assets[^"]+)"/g)].map((m) => m[1]);
    if (assets.length < 2) throw new Error('page names ' + assets.length + ' assets');
    let gz = 0;
    for (const a of assets) {
      const r = await fetch(base + a, { headers: { 'accept-encoding': 'gzip' } });
      const body = Buffer.from(await r.arrayBuffer());
      if (r.status !== 200 || body.length === 0) throw new Error(a + ': ' + r.status);
      gz += body.length;
    }
    const cfg = await (await fetch(base + 'api/config')).json();
    if (cfg.title !== 'pack') throw new Error('api/config: ' + JSON.stringify(cfg));
    if (gz + Buffer.byteLength(html) > 200 * 1024) throw new Error('UI is ' + gz + ' bytes gzipped');
    console.log(${JSON.stringify(load.includes('import') ? 'ESM' : 'CJS')} + ' dashboard: page + ' + assets.length + ' assets served from the package');
  } finally {
    srv.close();
    await dash.close();
  }
});
`;
  writeFileSync(
    join(app, 'dash.mjs'),
    dashboardCheck("import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\nimport { createDashboard } from 'azscale/dashboard';"),
  );
  writeFileSync(join(app, 'dash.cjs'), dashboardCheck("const { createDashboard } = require('azscale/dashboard');"));
  console.log(sh('node', ['dash.mjs'], { cwd: app }).trim());
  console.log(sh('node', ['dash.cjs'], { cwd: app }).trim());

  // 6c. azscale/testing from the tarball: a scratch test file runs describeCacheStore under vitest
  //     against the memory store (every test must pass), and against a store that breaks the lock
  //     rule (setIfAbsent always true), whose lock test must fail: the suite can fail.
  writeFileSync(
    join(app, 'store.test.mjs'),
    `import { describeCacheStore, describeSessionStore } from 'azscale/testing';
import { MemoryCacheStore } from 'azscale/cache';
import { MemorySessionStore } from 'azscale/session';
class NoLockStore extends MemoryCacheStore {
  async setIfAbsent(key, value, ttl) { await this.set(key, value, ttl); return true; }
}
describeCacheStore('memory', () => new MemoryCacheStore());
describeSessionStore('memory', () => new MemorySessionStore());
describeCacheStore('broken lock', () => new NoLockStore());
`,
  );
  writeFileSync(join(app, 'vitest.config.mjs'), 'export default { test: { include: ["store.test.mjs"] } };\n');
  try {
    sh('node', [join(app, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--reporter=json', '--outputFile=suite.json'], { cwd: app, stdio: ['ignore', 'ignore', 'ignore'] });
  } catch {
    // Exits 1: the broken store fails, as it must; the results say what failed.
  }
  const results = JSON.parse(readFileSync(join(app, 'suite.json'), 'utf8')).testResults.flatMap((f) => f.assertionResults);
  const of = (title) => results.filter((r) => r.ancestorTitles[0] === title);
  const memory = [...of('CacheStore contract: memory'), ...of('SessionStore contract: memory')];
  const broken = of('CacheStore contract: broken lock');
  if (memory.length < 20 || memory.some((r) => r.status !== 'passed')) {
    throw new Error('azscale/testing suites on the memory stores: ' + JSON.stringify(memory.filter((r) => r.status !== 'passed').map((r) => r.title)));
  }
  const brokenFailed = broken.filter((r) => r.status === 'failed').map((r) => r.title);
  if (brokenFailed.length === 0 || !brokenFailed.every((t) => t.includes('lock'))) {
    throw new Error('azscale/testing on a store without a lock: failed ' + JSON.stringify(brokenFailed));
  }
  console.log(`azscale/testing from the tarball: ${memory.length} contract tests pass on the memory stores; a store without a lock fails ${brokenFailed.length} (${brokenFailed.join('; ')})`);

  // 7. Type-check under nodenext and bundler resolution.
  const imports = allSubpaths
    .map((s, i) => `import * as m${i} from '${s}';\nexport const n${i}: number = Object.keys(m${i}).length;`)
    .join('\n');
  writeFileSync(
    join(app, 'types.ts'),
    `${imports}
import { isAzscaleError, ValidationError } from 'azscale';
export function check(e: unknown): string | undefined {
  if (isAzscaleError(e)) return e.code;
  if (e instanceof ValidationError) return e.option;
  return undefined;
}
`,
  );
  writeFileSync(
    join(app, 'types.cts'),
    `import az = require('azscale');\nexport const f: typeof az.isAzscaleError = az.isAzscaleError;\n`,
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const [module, resolution] of [
    ['nodenext', 'nodenext'],
    ['esnext', 'bundler'],
  ]) {
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module,
          moduleResolution: resolution,
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
        },
        files: resolution === 'nodenext' ? ['types.ts', 'types.cts'] : ['types.ts'],
      }),
    );
    sh('node', [tsc, '-p', 'tsconfig.json'], { cwd: app });
    console.log(`types: every subpath type-checks under moduleResolution ${resolution}`);
  }
  ok = true;
} finally {
  rmSync(app, { recursive: true, force: true });
}
console.log(ok ? 'pack-check: ok' : 'pack-check: FAILED');

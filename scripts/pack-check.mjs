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
const subpaths = Object.keys(pkg.exports)
  .filter((k) => k !== './package.json')
  .map((k) => (k === '.' ? 'azscale' : `azscale/${k.slice(2)}`));

const sh = (cmd, args, opts = {}) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...opts });

const app = mkdtempSync(join(tmpdir(), 'azs-pack-'));
let ok = false;
try {
  const tgzName = sh('npm', ['pack', '--silent', '--pack-destination', app], { cwd: root })
    .trim()
    .split('\n')
    .pop();
  const tgz = join(app, tgzName);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'azs-pack-app', private: true }));
  // A TypeScript user has @types/node; the types of pg come with azscale (its public types use them).
  sh('npm', ['install', '--no-audit', '--no-fund', '--silent', tgz, '@types/node@^20.19'], { cwd: app });

  // 0. The adapters' optional peers are not installed yet: importing azscale/ai or
  //    azscale/langchain must fail with AZS_MISSING_DEPENDENCY naming the package.
  for (const [sub, peer] of [
    ['azscale/ai', 'ai'],
    ['azscale/langchain', '@langchain/core'],
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
  sh('npm', ['install', '--no-audit', '--no-fund', '--silent', 'ai@^6', '@langchain/core@^1'], { cwd: app });

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
  const forbidden = { 'azscale/cache': ['pg', 'pg-pool'], 'azscale/scaling': ['ioredis', 'pg', 'pg-pool'], 'azscale/session': ['pg', 'pg-pool'], 'azscale/resilience': ['pg', 'pg-pool'], 'azscale/worker': ['pg', 'pg-pool'], 'azscale/observability': ['ioredis', 'pg', 'pg-pool'] };
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
  const cliOut = sh(join(app, 'node_modules', '.bin', 'azscale'), ['preset', 'large', '--json'], { cwd: app });
  const preset = JSON.parse(cliOut);
  if (preset.workers !== 8) throw new Error(`azscale preset large printed ${cliOut}`);
  console.log('bin: azscale preset large ok');

  // 7. Type-check under nodenext and bundler resolution.
  const imports = subpaths
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
  writeFileSync(join(app, 'types.cts'), `import az = require('azscale');\nexport const f: typeof az.isAzscaleError = az.isAzscaleError;\n`);
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

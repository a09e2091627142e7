/**
 * The published docs (README.md and docs/, both in the tarball, which is what npm shows and what
 * users read offline) link only to files the tarball contains, and to headings that exist; the
 * README's TypeScript snippets type-check against the code.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

/** Files `npm pack` would put in the tarball (package.json `files`, as npm resolves it). */
function packedFiles(): Set<string> {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const [info] = JSON.parse(out) as [{ files: { path: string }[] }];
  return new Set(info.files.map((f) => f.path));
}

/** GitHub's heading anchor: lowercase, punctuation dropped, spaces to '-'. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  const noCode = markdown.replace(/^```[\s\S]*?^```/gm, '');
  for (const m of noCode.matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = slug(m[1] as string);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Markdown links and images, and HTML src/href, outside code blocks and code spans. */
function linksOf(markdown: string): string[] {
  const text = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
  const links: string[] = [];
  for (const m of text.matchAll(
    /!?\[(?:[^\]]|\][^(])*?\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g,
  )) {
    links.push(m[1] as string);
  }
  for (const m of text.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)) links.push(m[1] as string);
  for (const m of text.matchAll(/\b(?:src|href)="([^"]+)"/g)) links.push(m[1] as string);
  return links;
}

/**
 * The broken links of the published markdown files: a relative link must name a file in the
 * tarball (and, with #anchor, a heading of that file); absolute http(s) and mailto links are
 * left alone (no network here).
 */
function brokenLinks(packed: Set<string>, read: (p: string) => string): string[] {
  const broken: string[] = [];
  for (const file of [...packed].filter((p) => p.endsWith('.md'))) {
    const text = read(file);
    for (const link of linksOf(text)) {
      if (/^(https?:|mailto:)/.test(link)) continue;
      const [path = '', anchor] = link.split('#');
      const target = path === '' ? file : posix.normalize(posix.join(posix.dirname(file), path));
      if (!packed.has(target)) {
        broken.push(`${file}: ${link} -> ${target} is not in the package`);
        continue;
      }
      if (anchor && target.endsWith('.md') && !anchorsOf(read(target)).has(anchor)) {
        broken.push(`${file}: ${link} -> no heading #${anchor} in ${target}`);
      }
    }
  }
  return broken;
}

/**
 * Code spans that name a file or folder of the repository the tarball does not carry
 * (`src/core/errors.ts`, `test/...`, `bench/...`, `../src/...`): a reader on npm has no such
 * path. A span counts as a path when its first segment (after resolving `./` and `../` against
 * the doc's folder) is a top-level entry of the repository; package names (`azscale/cache`,
 * `@nestjs/core`) and URL paths (`/metrics`) are not. The README's "Develop" section is about a
 * clone of the repository and is skipped, and so is CHANGELOG.md (a record of the repository's
 * history, which names its files).
 */
function unpublishedPaths(
  packed: Set<string>,
  read: (p: string) => string,
  topLevel: ReadonlySet<string>,
): string[] {
  const found: string[] = [];
  for (const file of [...packed].filter((p) => /^(README\.md|docs\/.*\.md)$/.test(p))) {
    let text = read(file).replace(/^```[\s\S]*?^```/gm, '');
    if (file === 'README.md') text = text.replace(/^## Develop\b[\s\S]*?(?=^## |(?![\s\S]))/m, '');
    for (const m of text.matchAll(/`([^`\n]+)`/g)) {
      const span = (m[1] as string).trim();
      if (!/^(\.{1,2}\/)*[\w.@-]+(\/[\w.@*-]*)*$/.test(span) || span.startsWith('/')) continue;
      // One bare word (`src`, `bench`) is a name, not a path; a path has a slash or an extension.
      if (!span.includes('/') && !/\.\w+$/.test(span)) continue;
      const rel = /^\.{1,2}\//.test(span) ? posix.join(posix.dirname(file), span) : span;
      const path = posix.normalize(rel).replace(/\/$/, '');
      const top = path.split('/')[0] as string;
      if (!topLevel.has(top)) continue;
      const inTarball =
        packed.has(path) ||
        [...packed].some((p) => p.startsWith(`${path.replace(/\/\.\.\.$/, '')}/`));
      if (!inTarball) found.push(`${file}: \`${span}\` is not in the package`);
    }
  }
  return found;
}

describe('published docs', () => {
  const packed = packedFiles();
  const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

  it('the tarball carries the README and the docs', () => {
    expect(packed.has('README.md')).toBe(true);
    expect([...packed].filter((p) => p.startsWith('docs/') && p.endsWith('.md')).length).toBe(
      readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).length,
    );
  });

  it('every link in README.md and docs/ resolves inside the tarball', () => {
    expect(brokenLinks(packed, read)).toEqual([]);
  });

  it('code spans name no repository path the tarball lacks (src/, test/, bench/, ...)', () => {
    const topLevel = new Set(readdirSync(ROOT).filter((n) => n !== 'node_modules'));
    expect(unpublishedPaths(packed, read, topLevel)).toEqual([]);
  });

  it('the path checker catches repository-only paths and leaves the rest', () => {
    const fake = new Map([
      [
        'README.md',
        '# T\n`src/core/errors.ts` `docs/a.md` `azscale/cache` `/metrics` `@nestjs/core`\n' +
          '## Develop\n`.ci/run` `CONTRIBUTING.md`\n## After\n`CONTRIBUTING.md`',
      ],
      ['docs/a.md', '`../src/...` `../test/x.test.ts` `img/x.svg` `bench/` `errors.ts` `src`'],
      ['CHANGELOG.md', '`src/core/timers.ts`'],
    ]);
    const files = new Set([...fake.keys(), 'docs/img/x.svg']);
    const top = new Set(['src', 'test', 'bench', 'docs', '.ci', 'CONTRIBUTING.md', 'README.md']);
    expect(unpublishedPaths(files, (p) => fake.get(p) ?? '', top)).toEqual([
      'README.md: `src/core/errors.ts` is not in the package',
      'README.md: `CONTRIBUTING.md` is not in the package',
      'docs/a.md: `../src/...` is not in the package',
      'docs/a.md: `../test/x.test.ts` is not in the package',
      'docs/a.md: `bench/` is not in the package',
    ]);
  });

  it('the checker catches links to unpublished files and missing headings', () => {
    const fake = new Map([
      [
        'README.md',
        '# T\n[src](src/index.ts) [ok](docs/a.md#usage) [bad](docs/a.md#nope) [self](#t)',
      ],
      ['docs/a.md', '## Usage\n![img](img/x.svg) [up](../README.md) [test](../test/x.test.ts)'],
    ]);
    const files = new Set([...fake.keys(), 'docs/img/x.svg']);
    expect(brokenLinks(files, (p) => fake.get(p) ?? '')).toEqual([
      'README.md: src/index.ts -> src/index.ts is not in the package',
      'README.md: docs/a.md#nope -> no heading #nope in docs/a.md',
      'docs/a.md: ../test/x.test.ts -> test/x.test.ts is not in the package',
    ]);
  });

  it('the README reads as a user page: install, supported versions, Develop last', () => {
    const readme = read('README.md');
    const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(headings).toContain('Install');
    expect(headings).toContain('Supported versions');
    expect(headings).toContain('Develop');
    const develop = readme.slice(readme.indexOf('## Develop'));
    expect(develop).toContain('npm ci && npm start');
    expect(develop).toContain('npm test');
    // Contributor matters live under Develop, not in the user's part of the page.
    const userPart = readme.slice(0, readme.indexOf('## Develop'));
    expect(userPart).not.toMatch(/\.ci\/run|apt-get|npm ci\b/);
    expect(readme).not.toMatch(/\bthe seed\b/i);
    // The supported Node versions are the ones CI runs and package.json's engines allow.
    const ci = read('.ci/run');
    for (const major of [22, 24]) expect(ci).toContain(`${major}`);
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines;
    expect(engines.node).toBe('>=20');
    expect(readme).toMatch(/\| Node\.js \| 20, 22, 24 \|/);
  });

  it("the README's TypeScript snippets type-check against the code", { timeout: 240_000 }, () => {
    const readme = read('README.md');
    const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((m) => m[1] as string);
    expect(blocks.length).toBeGreaterThanOrEqual(7);
    // A folder of its own: two test runs in one checkout (the issue's "another run in parallel")
    // must not delete each other's snippets.
    const cache = join(ROOT, 'node_modules', '.cache', 'azscale');
    mkdirSync(cache, { recursive: true });
    const dir = mkdtempSync(join(cache, 'readme-snippets-'));
    const srcRel = relative(dir, join(ROOT, 'src')).split('\\').join('/');
    // What a snippet leaves to the reader: the app, the model call, the agent.
    const ambient = [
      'declare const app: { get(path: string, h: unknown): void };',
      'declare function callModel(prompt: string): Promise<string>;',
      'declare function runAgent(task: unknown): Promise<unknown>;',
      'export {};',
    ].join('\n');
    const files = blocks.map((code, i) => {
      const f = join(dir, `snippet-${i}.ts`);
      const mapped = code.replace(
        /from 'azscale(?:\/([a-z]+))?'/g,
        (_, sub: string | undefined) => `from '${srcRel}/${sub ? `${sub}/index` : 'index'}.js'`,
      );
      writeFileSync(f, `${ambient}\n${mapped}`);
      return f;
    });
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
      lib: ['lib.es2023.d.ts'],
    };
    const program = ts.createProgram(files, options);
    const diags = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file === undefined || files.includes(d.file.fileName))
      .map((d) => {
        const where = d.file
          ? `${relative(dir, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line}`
          : '';
        return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
    expect(diags).toEqual([]);
    expect(existsSync(dirname(files[0] as string))).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });
});

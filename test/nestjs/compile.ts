/**
 * Compiles test/nestjs/legacy/*.ts as a NestJS project does (experimentalDecorators +
 * emitDecoratorMetadata, CommonJS) with the TypeScript API, type-checks it, and loads it with
 * its imports mapped to the modules this test process already loaded.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Type errors of the file, and its CommonJS output. */
export function compileLegacy(file: string): { diagnostics: string[]; js: string } {
  const fileName = path.resolve(here, file);
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    skipLibCheck: true,
    types: ['node'],
    lib: ['lib.es2023.d.ts', 'lib.decorators.legacy.d.ts'],
  };
  const host = ts.createCompilerHost(options);
  host.resolveModuleNames = (names, containing) =>
    names.map(
      (n) => ts.resolveModuleName(n.replace(/\.js$/, ''), containing, options, host).resolvedModule,
    );
  const program = ts.createProgram([fileName], options, host);
  const diagnostics = ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName === fileName)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  const source = ts.sys.readFile(fileName) ?? '';
  const js = ts.transpileModule(source, { compilerOptions: options, fileName }).outputText;
  return { diagnostics, js };
}

/** Runs CommonJS `js` with `require` answering from `modules`. */
export function load<T>(js: string, modules: Record<string, unknown>): T {
  const module = { exports: {} as Record<string, unknown> };
  const req = (id: string) => {
    if (id in modules) return modules[id];
    throw new Error(`unexpected require ${id}`);
  };
  new Function('require', 'module', 'exports', js)(req, module, module.exports);
  return module.exports as T;
}

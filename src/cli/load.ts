// What every command of the CLI starts with: the application's Sequelize instance, from the module that
// makes it — CommonJS, an ES module, or TypeScript through the application's own tsx.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Sequelize } from 'sequelize';

/** A usage or loading problem, said in one sentence (printed without a stack, exit code 2). */
export class UsageError extends Error {}

function isSequelize(value: unknown): value is Sequelize {
  return (
    !!value &&
    typeof value === 'object' &&
    typeof (value as Sequelize).getQueryInterface === 'function' &&
    typeof (value as Sequelize).define === 'function'
  );
}

/** A TypeScript module, through tsx when the application has it installed. */
async function loadTypeScript(path: string, file: string, command: string): Promise<unknown> {
  let tsx: { tsImport(specifier: string, parent: string): Promise<unknown> };
  try {
    // the application's tsx (resolved from the module, not from this package), its ES-module API as its
    // package.json exports it
    const manifest = createRequire(path).resolve('tsx/package.json');
    const exported = (JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import?: { default?: string } }> }).exports[
      './esm/api'
    ]?.import?.default;
    if (!exported) throw new Error('tsx has no ./esm/api export');
    tsx = (await import(pathToFileURL(join(dirname(manifest), exported)).href)) as typeof tsx;
  } catch {
    throw new UsageError(
      `${file} is TypeScript: install tsx in the application (npm install -D tsx) and run sequelize-multitenant ${command} again, or point it at the compiled JavaScript`,
    );
  }
  return tsx.tsImport(pathToFileURL(path).href, pathToFileURL(__filename).href);
}

/**
 * The application's Sequelize instance: what the module exports (module.exports, default or `sequelize`),
 * or what the function it exports returns when called with DATABASE_URL. `command` is how the user ran
 * it (`doctor`), for the sentences that say what to do.
 */
export async function loadApp(file: string, command: string): Promise<Sequelize> {
  const path = resolve(file);
  if (!existsSync(path)) throw new UsageError(`${file} does not exist (resolved to ${path})`);
  let loaded: unknown;
  if (/\.[cm]?ts$/.test(path)) loaded = await loadTypeScript(path, file, command);
  else if (path.endsWith('.mjs')) loaded = await import(pathToFileURL(path).href);
  else {
    try {
      loaded = require(path);
    } catch (err) {
      // an ES module (one with top-level await too: ERR_REQUIRE_ASYNC_MODULE on Node 20.19+)
      if (!['ERR_REQUIRE_ESM', 'ERR_REQUIRE_ASYNC_MODULE'].includes((err as { code?: string }).code ?? '')) throw err;
      loaded = await import(pathToFileURL(path).href);
    }
  }
  const candidates = [loaded, (loaded as { default?: unknown })?.default, (loaded as { sequelize?: unknown })?.sequelize];
  for (const c of candidates) {
    if (isSequelize(c)) return c;
    if (typeof c === 'function') {
      if (!process.env.DATABASE_URL) {
        throw new UsageError(
          `DATABASE_URL is not set, and ${file} exports a function that makes the Sequelize instance from it: DATABASE_URL=postgres://... npx sequelize-multitenant ${command} ${file}`,
        );
      }
      const made = await (c as (url: string | undefined) => unknown)(process.env.DATABASE_URL);
      if (isSequelize(made)) return made;
    }
  }
  throw new UsageError(`${file} exports no Sequelize instance (module.exports, default or sequelize) nor a function returning one`);
}

/** Where the instance connects, for the reports: `host:port/database`. */
export function databaseOf(sequelize: Sequelize): string {
  const config = (sequelize as unknown as { config: { host?: string; port?: number; database?: string } }).config;
  return `${config.host ?? ''}${config.port ? `:${config.port}` : ''}/${config.database ?? ''}`;
}

import { tmpdir } from 'node:os';
// One options validator for every public function that takes options: a misspelt name (`transfermode`,
// `topp`, `requird`) is refused saying which one it meant and listing the valid ones, a value of the wrong
// type is refused, and nothing is sent, installed or registered before. The exported functions are walked
// in the shipped .d.ts: one that takes options and is not exercised here fails the first test.
import { join } from 'node:path';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import anyTest, { type TestFn } from 'ava';
import Fastify from 'fastify';
import ts from 'typescript';
import { tenantFlowProducer, tenantProcessor, tenantQueue } from '../src/hosts/bullmq';
import { fastifyTenant } from '../src/hosts/fastify';
import { koaTenant } from '../src/hosts/koa';
import { MultitenantModule } from '../src/hosts/nestjs';
import {
  addTenantForeignKey,
  copyTenant,
  createDistributedTable,
  createReferenceTable,
  deleteTenant,
  disableRowLevelSecurity,
  enableRowLevelSecurity,
  exportTenant,
  importTenant,
  isolateTenant,
  MultitenantError,
  multitenant,
  routerOnly,
  tenantMiddleware,
  tenantSpanProcessor,
  tenantStats,
  undistributeTable,
} from '../src/index';
import { createFixture, type Fixture } from './helpers/fixture';

const test = anyTest as TestFn<Fixture>;
const root = join(__dirname, '..');

/** The entry and the subpaths, as an application imports them: their shipped declarations. */
const ENTRIES = ['index', 'hosts/fastify', 'hosts/koa', 'hosts/nestjs', 'hosts/bullmq'];

/** Every exported function (and static method of an exported class) with a parameter that takes options. */
function exportsTakingOptions(): string[] {
  const files = ENTRIES.map((e) => join(root, 'dist', `${e}.d.ts`));
  const program = ts.createProgram(files, { strict: true, skipLibCheck: true, types: ['node'] });
  const checker = program.getTypeChecker();
  const found = new Set<string>();
  const takesOptions = (signature: ts.Signature) =>
    signature.getParameters().some((p) => {
      const type = checker.getTypeOfSymbol(p);
      const named = [type.aliasSymbol?.name, type.getSymbol()?.name, ...(type.isUnion() ? type.types.map((u) => u.getSymbol()?.name) : [])];
      return /^(options|opts)$/i.test(p.name) || named.some((n) => n && /Options$/.test(n));
    });
  for (const file of files) {
    const source = program.getSourceFile(file);
    const moduleSymbol = source && checker.getSymbolAtLocation(source);
    if (!moduleSymbol) throw new Error(`no module for ${file} (npm test builds dist/ first)`);
    for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
      const resolved = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      const declaration = resolved.valueDeclaration;
      if (!declaration) continue; // a type
      const type = checker.getTypeOfSymbolAtLocation(resolved, declaration);
      if (type.getCallSignatures().some(takesOptions)) found.add(symbol.name);
      if (resolved.flags & ts.SymbolFlags.Class) {
        for (const member of checker.getPropertiesOfType(type)) {
          const memberType = checker.getTypeOfSymbolAtLocation(member, declaration);
          if (memberType.getCallSignatures().some(takesOptions)) found.add(`${symbol.name}.${member.name}`);
        }
      }
    }
  }
  return [...found].sort();
}

/**
 * How each is called with `options` (merged into the least it needs): resolves or returns once the call
 * has refused or accepted them. A function that checks its options later (a plugin at ready time, a factory
 * at init) is driven that far.
 */
const CALLS: Record<string, (f: Fixture, options: Record<string, unknown>) => unknown> = {
  multitenant: (f, o) => multitenant(f.sequelize, o as never),
  tenantMiddleware: (_f, o) => tenantMiddleware(() => undefined, o as never),
  koaTenant: (_f, o) => koaTenant(() => undefined, o as never),
  fastifyTenant: async (_f, o) => {
    const app = Fastify();
    try {
      await app.register(fastifyTenant, o as never);
      await app.ready();
    } finally {
      await app.close();
    }
  },
  'MultitenantModule.forRoot': (_f, o) => MultitenantModule.forRoot(o as never),
  'MultitenantModule.forRootAsync': async (_f, o) => {
    @Module({ imports: [MultitenantModule.forRootAsync({ useFactory: () => o as never })] })
    class App {}
    const app = await NestFactory.createApplicationContext(App, { logger: false, abortOnError: false });
    await app.close();
  },
  tenantQueue: (_f, o) => tenantQueue({ add: async () => ({}) } as never, o as never),
  tenantFlowProducer: (_f, o) => tenantFlowProducer({ add: async () => ({}), addBulk: async () => [] } as never, o as never),
  tenantProcessor: (_f, o) => tenantProcessor(async () => 1, o as never),
  tenantStats: (f, o) => tenantStats(f.sequelize, o as never),
  isolateTenant: (f, o) => isolateTenant(f.sequelize, 1, o as never),
  exportTenant: (f, o) => exportTenant(f.sequelize, 1, { to: tmpdir(), ...(o as object) } as never),
  deleteTenant: (f, o) => deleteTenant(f.sequelize, 1, { confirm: 1, ...(o as object) } as never),
  importTenant: (f, o) => importTenant(f.sequelize, tmpdir(), o as never),
  copyTenant: (f, o) => copyTenant(f.sequelize, 1, 3, { confirm: 3, ...(o as object) } as never),
  createDistributedTable: (f, o) => createDistributedTable(f.sequelize, 'products', 'store_id', o as never),
  createReferenceTable: (f, o) => createReferenceTable(f.sequelize, 'categories', o as never),
  undistributeTable: (f, o) => undistributeTable(f.sequelize, 'products', o as never),
  addTenantForeignKey: (f, o) =>
    addTenantForeignKey(f.sequelize, 'purchases', {
      tenantColumn: 'store_id',
      columns: ['product_id'],
      references: { table: 'products', columns: ['id'] },
      ...o,
    } as never),
  enableRowLevelSecurity: (f, o) => enableRowLevelSecurity(f.sequelize, 'products', { column: 'store_id', ...o } as never),
  disableRowLevelSecurity: (f, o) => disableRowLevelSecurity(f.sequelize, 'products', o as never),
  routerOnly: (f, o) => routerOnly(f.sequelize, o as never),
  tenantSpanProcessor: (_f, o) => tenantSpanProcessor(o as never),
};

/** Per function: an option it takes, misspelt as users misspell it, and the name it meant; one of the wrong type. */
const SHAPES: Record<string, { typo: [string, string]; wrong: Record<string, unknown> }> = {
  multitenant: { typo: ['stirct', 'strict'], wrong: { rls: 'yes' } },
  tenantMiddleware: { typo: ['requird', 'required'], wrong: { required: 'yes' } },
  koaTenant: { typo: ['Required', 'required'], wrong: { required: 1 } },
  fastifyTenant: { typo: ['resolvetenant', 'resolveTenant'], wrong: { required: 'true' } },
  'MultitenantModule.forRoot': { typo: ['resolveTennant', 'resolveTenant'], wrong: { multitenant: { strict: 'yes' } } },
  'MultitenantModule.forRootAsync': { typo: ['requierd', 'required'], wrong: { resolveTenant: 'x-store-id' } },
  tenantQueue: { typo: ['requred', 'required'], wrong: { required: null } },
  tenantFlowProducer: { typo: ['require', 'required'], wrong: { required: 'no' } },
  tenantProcessor: { typo: ['REQUIRED', 'required'], wrong: { required: 0 } },
  tenantStats: { typo: ['topp', 'top'], wrong: { top: '5' } },
  isolateTenant: { typo: ['transfermode', 'transferMode'], wrong: { transferMode: 'fast' } },
  exportTenant: { typo: ['batchsize', 'batchSize'], wrong: { batchSize: '10' } },
  deleteTenant: { typo: ['dryrun', 'dryRun'], wrong: { dryRun: 'yes' } },
  importTenant: { typo: ['onprogress', 'onProgress'], wrong: { batchSize: 0 } },
  copyTenant: { typo: ['onprogress', 'onProgress'], wrong: { set: 'x' } },
  tenantSpanProcessor: { typo: ['Attribute', 'attribute'], wrong: { spans: 'db' } },
  createDistributedTable: { typo: ['colocatewith', 'colocateWith'], wrong: { colocateWith: 42 } },
  createReferenceTable: { typo: ['transacton', 'transaction'], wrong: { notice: true } },
  undistributeTable: { typo: ['cascadeViaForeignKey', 'cascadeViaForeignKeys'], wrong: { cascadeViaForeignKeys: 'yes' } },
  addTenantForeignKey: { typo: ['ondelete', 'onDelete'], wrong: { columns: 'product_id' } },
  enableRowLevelSecurity: { typo: ['loging', 'logging'], wrong: { logging: 'yes' } },
  disableRowLevelSecurity: { typo: ['notce', 'notice'], wrong: { transaction: 'tx' } },
  routerOnly: { typo: ['notices', 'notice'], wrong: { notice: 'console' } },
};

test.before(async (t) => {
  t.context = await createFixture();
});
test.after.always(async (t) => {
  await t.context?.close();
});

/** What a call threw (or rejected with); undefined when it accepted. */
async function refusal(call: () => unknown): Promise<unknown> {
  try {
    await call();
    return undefined;
  } catch (err) {
    return err;
  }
}

test.serial('every exported function that takes options is checked here', (t) => {
  const walked = exportsTakingOptions();
  t.true(walked.length >= 15, walked.join(', '));
  t.deepEqual(walked, Object.keys(CALLS).sort(), 'the .d.ts exports taking options = the functions this file checks');
  t.deepEqual(Object.keys(SHAPES).sort(), Object.keys(CALLS).sort());
});

for (const [name, call] of Object.entries(CALLS)) {
  test.serial(`${name}: a misspelt option is refused, naming the one it meant and the valid ones; nothing is sent`, async (t) => {
    const f = t.context;
    const [typo, meant] = (SHAPES[name] as { typo: [string, string] }).typo;
    f.sql.length = 0;
    const err = await refusal(() => call(f, { [typo]: true }));
    t.true(err instanceof MultitenantError, `${name}: ${String(err)}`);
    const message = (err as Error).message;
    t.regex(message, new RegExp(`unknown option '${typo}' \\(did you mean '${meant}'\\?\\): the options are [^;]*\\b${meant}\\b`));
    t.regex(message, /; (nothing was (sent|installed|changed|made)|the (plugin|queue|processor|producer) was not (registered|wrapped))/);
    t.deepEqual(f.sql, [], 'no statement was sent');
  });

  test.serial(`${name}: an option of the wrong type is refused; nothing is sent`, async (t) => {
    const f = t.context;
    const { wrong } = SHAPES[name] as { wrong: Record<string, unknown> };
    f.sql.length = 0;
    const err = await refusal(() => call(f, wrong));
    t.true(err instanceof MultitenantError, `${name}: ${String(err)}`);
    t.regex((err as Error).message, /option \S+ must be .+, got /);
    t.deepEqual(f.sql, [], 'no statement was sent');
  });
}

test.serial('the lifecycle functions take a real AbortSignal as signal, not an object that looks like one; nothing is sent', async (t) => {
  const f = t.context;
  for (const name of ['exportTenant', 'deleteTenant', 'importTenant', 'copyTenant'] as const) {
    f.sql.length = 0;
    const err = await refusal(() => (CALLS[name] as (f: Fixture, o: Record<string, unknown>) => unknown)(f, { signal: { aborted: true } }));
    t.true(err instanceof MultitenantError, `${name}: ${String(err)}`);
    t.regex((err as Error).message, /option signal must be an AbortSignal, got an object/);
    t.deepEqual(f.sql, [], `${name}: no statement was sent`);
  }
});

test.serial('options that are not an object, and a required option left out, are refused', async (t) => {
  const f = t.context;
  for (const bad of [null, 'strict', ['strict'], 42]) {
    const err = await refusal(() => tenantStats(f.sequelize, bad as never));
    t.regex((err as Error).message, /options must be an object, got /);
  }
  const err = await refusal(() =>
    addTenantForeignKey(f.sequelize, 'purchases', {
      tenantColumn: 'store_id',
      references: { table: 'products', columns: ['id'] },
    } as never),
  );
  t.regex((err as Error).message, /option columns must be given; nothing was sent/);
  const nested = await refusal(() =>
    addTenantForeignKey(f.sequelize, 'purchases', {
      tenantColumn: 'store_id',
      columns: ['product_id'],
      references: { tabel: 'products' },
    } as never),
  );
  t.regex((nested as Error).message, /unknown option 'tabel' \(did you mean 'table'\?\)/);
  // several at once are all named; options of the framework (Fastify's prefix) pass
  // names Object.prototype has are names no function takes
  const inherited = await refusal(() => tenantStats(f.sequelize, JSON.parse('{"constructor": 1, "toString": 2, "__proto__": {}}')));
  t.regex((inherited as Error).message, /unknown options 'constructor', 'toString', '__proto__':/);
  const several = await refusal(() => tenantStats(f.sequelize, { topp: 1, bye: 'cpu' } as never));
  t.regex((several as Error).message, /unknown options 'topp' \(did you mean 'top'\?\), 'bye':/);
  const app = Fastify();
  await app.register(fastifyTenant, { prefix: '/api', resolveTenant: () => undefined } as never);
  await t.notThrowsAsync(() => app.ready());
  await app.close();
});

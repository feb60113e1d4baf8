// MultitenantModule installs the plugin on @nestjs/sequelize's connection as the connection is created:
// before its models are added, before `synchronize` syncs them, before any provider can query — so the
// sync makes the composite tenant foreign keys and (rls: true) the policies, and queries between
// NestFactory.create() and app.init() are scoped. With forRootAsync, whose options exist only once
// its factory ran, the plugin is installed with its defaults at creation (scoped from the start) and
// gets the factory's options at app.init().
import 'reflect-metadata';
import { type DynamicModule, type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { getConnectionToken, SequelizeModule } from '@nestjs/sequelize';
import { EntitiesMetadataStorage } from '@nestjs/sequelize/dist/entities-metadata.storage';
import anyTest, { type TestFn } from 'ava';
import { QueryTypes, type Sequelize } from 'sequelize';
import type { ModelCtor } from 'sequelize-typescript';
import { MultitenantModule } from '../src/hosts/nestjs';
import { MissingTenantError, MultitenantError, withoutTenant, withTenant } from '../src/index';
import { stateOf } from '../src/state';
import { type Models, tsModels } from './helpers/install-models';
import { createRlsDatabase, type RlsDatabase } from './helpers/rls';

const test = anyTest as TestFn<{ db: RlsDatabase }>;
test.before(async (t) => {
  t.context = { db: await createRlsDatabase() };
});
test.after.always(async (t) => t.context?.db?.drop());

const rows = async <T>(s: Sequelize, sql: string): Promise<T[]> => (await s.query(sql, { type: QueryTypes.SELECT })) as T[];

async function seed(m: Models): Promise<void> {
  await withoutTenant(async () => {
    await m.Store.bulkCreate([{ id: 1 }, { id: 2 }]);
    await m.Product.bulkCreate([1, 2].flatMap((store_id) => [1, 2].map((id) => ({ store_id, id, name: `s${store_id}-${id}` }))));
  });
}

// @nestjs/sequelize keeps what forFeature registers in a process-wide map: one test's models would be
// auto-loaded into the next test's connection (two models named Store, their associations crossed)
test.afterEach.always(() => {
  (EntitiesMetadataStorage as unknown as { storage: Map<string, unknown[]> }).storage.clear();
});

/** A Nest app: @nestjs/sequelize with synchronize on `m`'s models, and the MultitenantModule given. */
async function appWith(db: RlsDatabase, m: Models & { all: ModelCtor[] }, multitenantModule: DynamicModule): Promise<INestApplication> {
  @Module({
    imports: [
      SequelizeModule.forRoot({
        dialect: 'postgres',
        uri: db.url,
        logging: false,
        autoLoadModels: true,
        synchronize: true,
        ...db.connectOptions(),
      }),
      SequelizeModule.forFeature(m.all),
      multitenantModule,
    ],
  })
  class AppModule {}
  return NestFactory.create(AppModule, { logger: false, abortOnError: false });
}

/** The definitions of the tenant foreign keys of `<prefix>_purchases`. */
const purchaseKeys = async (s: Sequelize, prefix: string) =>
  (
    await rows<{ d: string }>(
      s,
      `SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE contype = 'f' AND conrelid = '${prefix}_purchases'::regclass`,
    )
  ).map((k) => k.d);

test.serial(
  'forRoot + synchronize: installed before the sync; tenant foreign keys and policies made; scoped before app.init()',
  async (t) => {
    const { db } = t.context;
    const m = tsModels('nx1');
    const app = await appWith(db, m, MultitenantModule.forRoot({ multitenant: { rls: true, strict: true, notice: false } }));
    try {
      const s = app.get<Sequelize>(getConnectionToken() as string);
      t.like(stateOf(s)?.options, { rls: true, strict: true }, 'installed with the module’s options before app.init()');
      t.true(
        (await purchaseKeys(s, 'nx1')).some((d) =>
          d.startsWith('FOREIGN KEY (store_id, product_id) REFERENCES nx1_products(store_id, id)'),
        ),
        'the tenant foreign key',
      );
      const policies = await rows<{ tablename: string }>(s, `SELECT tablename FROM pg_policies WHERE tablename LIKE 'nx1\\_%' ORDER BY 1`);
      t.deepEqual(
        policies.map((p) => p.tablename),
        ['nx1_product_tags', 'nx1_products', 'nx1_purchases', 'nx1_stores', 'nx1_tags'],
      );
      await seed(m);
      t.deepEqual(
        (await withTenant(1, () => m.Product.findAll({ order: [['id', 'ASC']] }))).map((p) => p.get('name')),
        ['s1-1', 's1-2'],
      );
      t.is(String((await withTenant(2, () => m.Purchase.create({ id: 1, product_id: 1 }))).get('store_id')), '2');
      await t.throwsAsync(() => m.Product.findAll(), { instanceOf: MissingTenantError });
      await app.init();
      t.deepEqual(
        (await withTenant(2, () => m.Product.findAll({ order: [['id', 'ASC']] }))).map((p) => p.get('name')),
        ['s2-1', 's2-2'],
      );
    } finally {
      await app.close();
    }
  },
);

test.serial('forRootAsync: scoped from the connection’s creation, the factory’s options from app.init()', async (t) => {
  const { db } = t.context;
  const m = tsModels('nx2');
  const app = await appWith(
    db,
    m,
    MultitenantModule.forRootAsync({ useFactory: async () => ({ multitenant: { strict: true, notice: false } }) }),
  );
  try {
    const s = app.get<Sequelize>(getConnectionToken() as string);
    t.truthy(stateOf(s), 'installed before app.init()');
    t.true(
      (await purchaseKeys(s, 'nx2')).some((d) => d.startsWith('FOREIGN KEY (store_id, product_id) REFERENCES nx2_products(store_id, id)')),
      'the tenant foreign key',
    );
    await seed(m);
    t.deepEqual(
      (await withTenant(1, () => m.Product.findAll({ order: [['id', 'ASC']] }))).map((p) => p.get('name')),
      ['s1-1', 's1-2'],
    );
    await app.init();
    t.is(stateOf(s)?.options.strict, true, 'the factory’s options at app.init()');
    await t.throwsAsync(() => m.Product.findAll(), { instanceOf: MissingTenantError });
  } finally {
    await app.close();
  }
});

test.serial('a multitenant connection name that names no @nestjs/sequelize connection fails app.init() saying so', async (t) => {
  const { db } = t.context;
  const m = tsModels('nx3');
  @Module({
    imports: [
      SequelizeModule.forRoot({ name: 'other', dialect: 'postgres', uri: db.url, logging: false, models: m.all, ...db.connectOptions() }),
      MultitenantModule.forRoot({ multitenant: { notice: false } }),
    ],
  })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
  try {
    await t.throwsAsync(() => app.init(), {
      instanceOf: MultitenantError,
      message: /no @nestjs\/sequelize connection \(the default one\) to install multitenant\(\) on: give multitenant\.connection the name/,
    });
  } finally {
    await app.close().catch(() => undefined);
  }
});

// TRUNCATE ... CASCADE from a global table empties every table referencing it, for every tenant: refused
// under a tenant and in strict mode when it reaches a tenant table; allowed inside withoutTenant.
import anyTest, { type TestFn } from 'ava';
import { DataTypes } from 'sequelize';
import { MissingTenantError, multitenant, TenantMismatchError, withoutTenant, withTenant } from '../src/index';
import { createFixture, type Fixture } from './helpers/fixture';

const test = anyTest as TestFn<Fixture>;
test.before(async (t) => {
  t.context = await createFixture();
  await withoutTenant(() =>
    t.context.sequelize.query(
      'ALTER TABLE products ADD CONSTRAINT products_category_fk FOREIGN KEY (category_id) REFERENCES categories (id)',
    ),
  );
});
test.after.always(async (t) => t.context?.close());
test.beforeEach(async (t) => {
  multitenant(t.context.sequelize, t.context.options);
  await t.context.reset();
});

test.serial('under a tenant: Category.truncate({ cascade: true }) reaching products is refused, nothing emptied', async (t) => {
  const { Category, rows, capture } = t.context;
  const { sql } = await capture(async () => {
    const err = await t.throwsAsync(() => withTenant(1, () => Category.truncate({ cascade: true })), { instanceOf: TenantMismatchError });
    t.regex(err?.message ?? '', /TRUNCATE "categories" CASCADE reaches the tenant tables of Product/);
    t.is(err?.operation, 'truncate');
  });
  t.false(sql.some((s) => /TRUNCATE/.test(s)));
  t.is((await rows('products')).length, 5);
  t.is((await rows('categories')).length, 2);
});

test.serial('strict mode with no tenant: refused; inside withoutTenant: it runs', async (t) => {
  const { Category, sequelize, rows } = t.context;
  multitenant(sequelize, { ...t.context.options, strict: true });
  await t.throwsAsync(() => Category.truncate({ cascade: true }), { instanceOf: MissingTenantError });
  t.is((await rows('products')).length, 5);
  await withoutTenant(() => Category.truncate({ cascade: true }));
  t.is((await rows('products')).length, 0);
});

test.serial('a cascade that reaches only global tables runs under a tenant', async (t) => {
  const { sequelize } = t.context;
  const Region = sequelize.define(
    'Region',
    { id: { type: DataTypes.INTEGER, primaryKey: true } },
    { tableName: 'regions', timestamps: false },
  );
  const City = sequelize.define(
    'City',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true },
      region_id: { type: DataTypes.INTEGER, references: { model: 'regions', key: 'id' } },
    },
    { tableName: 'cities', timestamps: false },
  );
  await withoutTenant(async () => {
    await Region.sync();
    await City.sync();
    await sequelize.query('INSERT INTO regions VALUES (1); INSERT INTO cities VALUES (1, 1)');
  });
  await withTenant(1, () => Region.truncate({ cascade: true }));
  const [left] = await withoutTenant(() => sequelize.query('SELECT count(*)::int AS n FROM cities'));
  t.deepEqual(left, [{ n: 0 }]);
  await withoutTenant(() => sequelize.query('DROP TABLE cities; DROP TABLE regions'));
  sequelize.modelManager.removeModel(City);
  sequelize.modelManager.removeModel(Region);
});

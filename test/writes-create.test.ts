import anyTest, { type TestFn } from 'ava';
import { InvalidTenantError, TenantMismatchError, withTenant } from '../src/index';
import { pgOnly } from './helpers/db';
import { type Fixture, fixtureTests, ORG_A } from './helpers/fixture';

const test = fixtureTests(anyTest as TestFn<Fixture>);

const storeIds = async (f: Fixture, table = 'products') => (await f.rows(table)).map((r) => r.store_id);

test.serial('create fills the tenant column (allowNull: false) and the INSERT carries it', async (t) => {
  const { Product, capture, rows } = t.context;
  const { result, sql } = await capture(() => withTenant(1, () => Product.create({ name: 'kiwi' })));
  t.is(result.get('store_id'), 1);
  t.regex(sql[0] as string, /INSERT INTO "products" \(.*"store_id".*\)/);
  const kiwi = (await rows('products')).filter((r) => r.name === 'kiwi');
  t.deepEqual(
    kiwi.map((r) => r.store_id),
    [1],
  );
});

test.serial('create with fields: that leave out the tenant still fills it', async (t) => {
  const { Product, rows } = t.context;
  await withTenant(2, () => Product.create({ name: 'fig' }, { fields: ['name'] }));
  t.deepEqual(
    (await rows('products')).filter((r) => r.name === 'fig').map((r) => r.store_id),
    [2],
  );
});

test.serial('build + save fills the tenant', async (t) => {
  const { Purchase, rows } = t.context;
  await withTenant(2, () => Purchase.build({ product_id: 3, qty: 4 }).save());
  const last = (await rows('purchases')).at(-1);
  t.is(last?.store_id, 2);
  t.is(last?.qty, 4);
});

test.serial('create with another tenant explicitly → TenantMismatchError, nothing written', async (t) => {
  const { Product, Purchase } = t.context;
  const before = await storeIds(t.context);
  const err = await t.throwsAsync(() => withTenant(1, () => Product.create({ name: 'evil', store_id: 2 })), {
    instanceOf: TenantMismatchError,
  });
  t.is(err?.model, 'Product');
  t.is(err?.operation, 'create');
  t.is(err?.tenant, 1);
  t.is(err?.received, 2);
  t.regex(err?.message ?? '', /Product\.create: .*store_id = 2.*current tenant: 1/);
  t.deepEqual(await storeIds(t.context), before);
  await t.throwsAsync(() => withTenant(1, () => Purchase.build({ product_id: 1, store_id: 2 }).save()), {
    instanceOf: TenantMismatchError,
  });
  t.is((await t.context.rows('purchases')).length, 3);
});

test.serial('create with the current tenant given explicitly (as another type) is accepted', async (t) => {
  const { Product } = t.context;
  const p = await withTenant('1', () => Product.create({ name: 'same', store_id: 1 }));
  t.is(p.get('store_id'), 1);
});

test.serial('create under several tenants is refused and writes nothing', async (t) => {
  const { Product, Purchase } = t.context;
  const err = await t.throwsAsync(() => withTenant([1, 2], () => Product.create({ name: 'both' })), { instanceOf: TenantMismatchError });
  t.regex(err?.message ?? '', /several tenants/);
  t.deepEqual(err?.tenant, [1, 2]);
  await t.throwsAsync(() => withTenant([1, 2], () => Purchase.bulkCreate([{ product_id: 1 }])), { instanceOf: TenantMismatchError });
  await t.throwsAsync(() => withTenant([1, 2], () => Product.create({ name: 'both', store_id: 1 })), { instanceOf: TenantMismatchError });
  t.is((await t.context.rows('products')).length, 5);
  t.is((await t.context.rows('purchases')).length, 3);
});

test.serial('bulkCreate fills every row; one row of another tenant refuses the whole batch', async (t) => {
  const { Purchase, rows, capture } = t.context;
  const { sql } = await capture(() =>
    withTenant(1, () =>
      Purchase.bulkCreate([
        { product_id: 1, qty: 5 },
        { product_id: 2, qty: 6 },
      ]),
    ),
  );
  t.is(sql.length, 1);
  t.deepEqual(
    (await rows('purchases')).filter((r) => (r.qty as number) >= 5).map((r) => r.store_id),
    [1, 1],
  );
  await t.throwsAsync(
    () =>
      withTenant(1, () =>
        Purchase.bulkCreate([
          { product_id: 1, qty: 7 },
          { product_id: 1, qty: 8, store_id: 2 },
        ]),
      ),
    { instanceOf: TenantMismatchError },
  );
  t.is((await rows('purchases')).length, 5);
});

test.serial('bulkCreate with validate: true and fields: fills the tenant before validation', async (t) => {
  const { Product, rows } = t.context;
  const made = await withTenant(2, () => Product.bulkCreate([{ name: 'a1' }, { name: 'a2' }], { validate: true, fields: ['name'] }));
  t.deepEqual(
    made.map((p) => p.get('store_id')),
    [2, 2],
  );
  t.deepEqual(
    (await rows('products'))
      .filter((r) => String(r.name).startsWith('a'))
      .map((r) => [r.name, r.store_id])
      .slice(-2),
    [
      ['a1', 2],
      ['a2', 2],
    ],
  );
});

test.serial('findOrCreate fills the tenant; a where naming another tenant is refused', async (t) => {
  const { Product, rows } = t.context;
  const [made, created] = await withTenant(2, () => Product.findOrCreate({ where: { name: 'apple-A' }, defaults: { price: 1 } }));
  t.true(created); // apple-A belongs to tenant 1, so tenant 2 does not find it
  t.is(made.get('store_id'), 2);
  const [found, again] = await withTenant(2, () => Product.findOrCreate({ where: { name: 'apple-A' } }));
  t.false(again);
  t.is(found.get('store_id'), 2);
  await t.throwsAsync(() => withTenant(1, () => Product.findOrCreate({ where: { name: 'x', store_id: 2 } })), {
    instanceOf: TenantMismatchError,
  });
  t.deepEqual(
    (await rows('products')).filter((r) => r.name === 'x'),
    [],
  );
});

test.serial('findOrCreate racing within one tenant returns [row, false] to the loser, like plain Sequelize', async (t) => {
  const { Product, Coupon, rows, db } = t.context;
  // Every find misses before any create lands: a hook holds each create until all the racers (as many
  // as the pool runs at once: one on PGlite, where they take turns) have found nothing — an event, not
  // a sleep, so that a loaded machine races the same way.
  const barrier = (racers: number) => {
    let arrived = 0;
    let open: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    return () => {
      arrived += 1;
      if (arrived >= Math.min(racers, db.maxConnections)) open();
      return opened;
    };
  };
  Product.addHook('beforeCreate', 'race', barrier(3));
  Coupon.addHook('beforeCreate', 'race', barrier(2));
  try {
    const race = await withTenant(1, () =>
      Promise.all([1, 2, 3].map(() => Product.findOrCreate({ where: { id: 7 }, defaults: { name: 'raced' } }))),
    );
    t.deepEqual(
      race.map(([row]) => [row.get('id'), row.get('store_id')]),
      [
        [7, 1],
        [7, 1],
        [7, 1],
      ],
    );
    // one create wins; the others found its row ([row, false], as plain Sequelize answers a lost race)
    t.deepEqual(race.map(([, created]) => created).sort(), [false, false, true]);
    // a key whose tenant column has another name and a BIGINT type (read back as a string)
    const coupons = await withTenant(2, () =>
      Promise.all([1, 2].map(() => Coupon.findOrCreate({ where: { code: 'RACE' }, defaults: { uses: 1 } }))),
    );
    t.deepEqual(
      coupons.map(([c]) => c.get('code')),
      ['RACE', 'RACE'],
    );
    t.deepEqual(coupons.map(([, created]) => created).sort(), [false, true]);
  } finally {
    Product.removeHook('beforeCreate', 'race');
    Coupon.removeHook('beforeCreate', 'race');
  }
  t.deepEqual(
    (await rows('products', 'store_id, id')).filter((r) => r.id === 7).map((r) => r.store_id),
    [1],
  );
  t.deepEqual(
    (await rows('coupons', 'shop_ref, code')).filter((r) => r.code === 'RACE').map((r) => String(r.shop_ref)),
    ['2'],
  );
});

pgOnly(test)('with no tenant set, create is a plain insert', async (t) => {
  const { Note, rows } = t.context;
  await Note.create({ body: 'orphan' });
  t.is((await rows('notes')).find((r) => r.body === 'orphan')?.acc_id, null);
});

test.serial('the tenant table itself can be created without a tenant set', async (t) => {
  const { Store, rows } = t.context;
  const s = await Store.create({ name: 'D' });
  t.is(s.get('id'), 4);
  t.deepEqual(
    (await rows('stores')).map((r) => r.name),
    ['A', 'B', 'C', 'D'],
  );
});

test.serial('underscored, field:-mapped, BIGINT and UUID tenant columns are filled by their column', async (t) => {
  const { Review, Coupon, Doc, rows } = t.context;
  await withTenant(2, () => Review.create({ stars: 3 }));
  t.is((await rows('reviews')).at(-1)?.store_id, 2);
  await withTenant(2n, () => Coupon.create({ code: 'NEW' }));
  t.is(String((await rows('coupons', 'code')).find((r) => r.code === 'NEW')?.shop_ref), '2');
  await withTenant(ORG_A, () => Doc.create({ title: 'made' }));
  t.is((await rows('docs')).at(-1)?.org_id, ORG_A);
});

test.serial('a tenant of the wrong type for the column → InvalidTenantError, nothing written or read', async (t) => {
  const { Product, Doc, capture } = t.context;
  const { sql } = await capture(async () => {
    await t.throwsAsync(() => withTenant('abc', () => Product.create({ name: 'z' })), { instanceOf: InvalidTenantError });
    await t.throwsAsync(() => withTenant('abc', () => Product.findAll()), { instanceOf: InvalidTenantError });
    await t.throwsAsync(() => withTenant(1, () => Doc.findAll()), { instanceOf: InvalidTenantError });
  });
  t.deepEqual(sql, []);
});

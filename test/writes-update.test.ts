import anyTest, { type TestFn } from 'ava';
import { DataTypes } from 'sequelize';
import { TenantMismatchError, UnscopedQueryError, withoutTenant, withTenant } from '../src/index';
import { onCitus, pgOnly } from './helpers/db';
import { auditMode, type Fixture, fixtureTests } from './helpers/fixture';

const test = fixtureTests(anyTest as TestFn<Fixture>);

type Row = Record<string, unknown>;
const product = (rows: Row[], id: number, store: number) => rows.find((r) => r.id === id && r.store_id === store);
const setClause = (sql: string) => /SET (.*?) WHERE/.exec(sql)?.[1] ?? '';

test.serial('instance save updates only the current tenant row that shares the id; SET has no tenant column', async (t) => {
  const { Product, rows, capture } = t.context;
  const apple = await withTenant(1, () => Product.findOne({ where: { id: 1 } }));
  if (!apple) return t.fail();
  apple.set('name', 'apple-A2');
  const { sql } = await capture(() => withTenant(1, () => apple.save()));
  t.regex(sql[0] as string, /UPDATE "products" SET "name"='apple-A2' WHERE "id" = 1 AND "store_id" = 1$/);
  t.notRegex(setClause(sql[0] as string), /store_id/);
  const all = await rows('products');
  t.is(product(all, 1, 1)?.name, 'apple-A2');
  t.is(product(all, 1, 2)?.name, 'apple-B');
});

test.serial('instance update() touches only the current tenant row', async (t) => {
  const { Product, rows } = t.context;
  await withTenant(2, async () => {
    const apple = await Product.findOne({ where: { id: 1 } });
    await apple?.update({ price: 99 });
  });
  const all = await rows('products');
  t.is(product(all, 1, 2)?.price, 99);
  t.is(product(all, 1, 1)?.price, 10);
});

test.serial('Model.update is scoped and keeps the tenant out of SET', async (t) => {
  const { Product, rows, capture } = t.context;
  const { result, sql } = await capture(() => withTenant(2, () => Product.update({ price: 0 }, { where: { id: 1 } })));
  t.deepEqual(result, [1]);
  t.regex(sql[0] as string, /WHERE "id" = 1 AND "store_id" = 2$/);
  const all = await rows('products');
  t.is(product(all, 1, 2)?.price, 0);
  t.is(product(all, 1, 1)?.price, 10);
  // The current tenant given in values: accepted, and still not in SET (Citus rejects SET store_id).
  const second = await capture(() => withTenant(2, () => Product.update({ store_id: 2, price: 5 }, { where: { id: 2 } })));
  t.notRegex(setClause(second.sql[0] as string), /store_id/);
  t.is(product(await rows('products'), 2, 2)?.price, 5);
});

test.serial('Model.update that would move rows to another tenant → TenantMismatchError, nothing written', async (t) => {
  const { Product, Purchase, rows } = t.context;
  const before = await rows('products');
  const err = await t.throwsAsync(() => withTenant(1, () => Product.update({ store_id: 2, name: 'moved' }, { where: { id: 1 } })), {
    instanceOf: TenantMismatchError,
  });
  t.is(err?.operation, 'update');
  t.is(err?.model, 'Product');
  t.deepEqual(await rows('products'), before);
  await t.throwsAsync(() => withTenant([1, 2], () => Purchase.update({ store_id: 1 }, { where: { id: 2 } })), {
    instanceOf: TenantMismatchError,
  });
  t.is((await rows('purchases')).find((r) => r.id === 2)?.store_id, 2);
});

pgOnly(test)('changing an instance tenant (key without the tenant column) → TenantMismatchError, nothing written', async (t) => {
  const { Purchase, rows } = t.context;
  const before = await rows('purchases');
  await withTenant(1, async () => {
    const p = await Purchase.findByPk(1);
    if (!p) return t.fail();
    p.set('store_id', 2);
    p.set('qty', 50);
    const err = await t.throwsAsync(() => p.save(), { instanceOf: TenantMismatchError });
    t.is(err?.operation, 'save');
    t.is(err?.received, 2);
  });
  t.deepEqual(await rows('purchases'), before);
});

test.serial('saving an unchanged tenant given as another type never puts it in SET', async (t) => {
  const { Purchase, capture, rows } = t.context;
  const { sql } = await capture(() =>
    withTenant(2, async () => {
      const p = await Purchase.findByPk(3);
      p?.set('store_id', '2');
      p?.set('qty', 30);
      await p?.save();
    }),
  );
  const update = sql.find((s) => s.startsWith('UPDATE')) ?? '';
  t.notRegex(setClause(update), /store_id/);
  t.regex(update, /"store_id" = 2/);
  t.is((await rows('purchases')).find((r) => r.id === 3)?.qty, 30);
});

test.serial('an instance loaded under tenant B and saved, incremented or destroyed under tenant A changes nothing', async (t) => {
  const { Product, Purchase, rows } = t.context;
  const bApple = await withTenant(2, () => Product.findOne({ where: { id: 1 } }));
  const bPurchase = await withTenant(2, () => Purchase.findByPk(2));
  if (!bApple || !bPurchase) return t.fail();
  const before = { p: await rows('products'), u: await rows('purchases') };
  bApple.set('name', 'stolen');
  await t.throwsAsync(() => withTenant(1, () => bApple.save()), { instanceOf: TenantMismatchError });
  await t.throwsAsync(() => withTenant(1, () => bApple.increment('stock')), { instanceOf: TenantMismatchError });
  await t.throwsAsync(() => withTenant(1, () => bApple.destroy()), { instanceOf: TenantMismatchError });
  await t.throwsAsync(() => withTenant(1, () => bPurchase.destroy()), { instanceOf: TenantMismatchError });
  await t.throwsAsync(() => withTenant(1, () => bPurchase.update({ qty: 0 })), { instanceOf: TenantMismatchError });
  t.deepEqual(await rows('products'), before.p);
  t.deepEqual(await rows('purchases'), before.u);
});

test.serial('static increment and decrement are scoped', async (t) => {
  const { Product, rows, capture } = t.context;
  const { sql } = await capture(() => withTenant(1, () => Product.increment('stock', { by: 3, where: { id: 1 } })));
  t.regex(sql[0] as string, /"store_id" = 1/);
  await withTenant(2, () => Product.decrement({ stock: 2 }, { where: { id: 1 } }));
  const all = await rows('products');
  t.is(product(all, 1, 1)?.stock, 8);
  t.is(product(all, 1, 2)?.stock, 5);
  t.is(product(all, 2, 1)?.stock, 5);
});

test.serial('instance increment and decrement touch only the same-id row of the current tenant', async (t) => {
  const { Product, rows } = t.context;
  await withTenant(2, async () => {
    const apple = await Product.findOne({ where: { id: 1 } });
    await apple?.increment('stock', { by: 10 });
    await apple?.decrement('price');
  });
  const all = await rows('products');
  t.deepEqual([product(all, 1, 2)?.stock, product(all, 1, 2)?.price], [17, 10]);
  t.deepEqual([product(all, 1, 1)?.stock, product(all, 1, 1)?.price], [5, 10]);
});

test.serial('incrementing the tenant column is refused', async (t) => {
  const { Product, rows } = t.context;
  const before = await rows('products');
  await t.throwsAsync(() => withTenant(1, () => Product.increment('store_id', { where: { id: 1 } })), {
    instanceOf: TenantMismatchError,
  });
  t.deepEqual(await rows('products'), before);
});

test.serial('Model.destroy and instance destroy delete only the current tenant rows', async (t) => {
  const { Product, Purchase, rows, capture } = t.context;
  const { result, sql } = await capture(() => withTenant(2, () => Product.destroy({ where: { id: 1 } })));
  t.is(result, 1);
  t.regex(sql[0] as string, /DELETE FROM "products" WHERE "id" = 1 AND "store_id" = 2/);
  t.truthy(product(await rows('products'), 1, 1));
  t.falsy(product(await rows('products'), 1, 2));
  await withTenant(1, async () => (await Product.findOne({ where: { id: 2 } }))?.destroy());
  t.falsy(product(await rows('products'), 2, 1));
  t.truthy(product(await rows('products'), 2, 2));
  t.is(await withTenant(1, () => Purchase.destroy({ where: { id: 2 } })), 0);
  t.is((await rows('purchases')).length, 3);
});

test.serial('truncate: true becomes a DELETE scoped to the tenant', async (t) => {
  const { Product, Purchase, rows, capture } = t.context;
  const { sql } = await capture(() => withTenant(1, () => Product.destroy({ truncate: true })));
  t.is(sql.length, 1);
  t.regex(sql[0] as string, /^DELETE FROM "products" WHERE "store_id" = 1/);
  t.deepEqual(
    (await rows('products')).map((r) => r.store_id),
    [2, 2, 2],
  );
  await withTenant(2, () => Purchase.truncate());
  t.deepEqual(
    (await rows('purchases')).map((r) => r.store_id),
    [1],
  );
  // Without a tenant it is a real TRUNCATE.
  const plain = await capture(() => withoutTenant(() => Purchase.truncate()));
  t.regex(plain.sql[0] as string, /^TRUNCATE/);
});

test.serial('paranoid: destroy, restore (static and instance) and force are scoped', async (t) => {
  const { Review, rows } = t.context;
  await withTenant(1, () => Review.destroy({ where: { id: [1, 2] } }));
  let all = await rows('reviews');
  t.truthy(all.find((r) => r.id === 1)?.deleted_at);
  t.is(all.find((r) => r.id === 2)?.deleted_at, null);
  await withoutTenant(() => Review.destroy({ where: { id: 2 } }));
  await withTenant(1, () => Review.restore({ where: { id: [1, 2] } }));
  all = await rows('reviews');
  t.is(all.find((r) => r.id === 1)?.deleted_at, null);
  t.truthy(all.find((r) => r.id === 2)?.deleted_at); // tenant 2's row stays deleted
  const mine = await withTenant(1, () => Review.findByPk(1));
  await withTenant(1, () => mine?.destroy());
  await withTenant(1, () => mine?.restore());
  t.is((await rows('reviews')).find((r) => r.id === 1)?.deleted_at, null);
  await withTenant(1, () => Review.destroy({ where: {}, force: true }));
  t.deepEqual(
    (await rows('reviews')).map((r) => r.id),
    [2],
  );
});

test.serial('upsert with a key that includes the tenant never touches the other tenant row', async (t) => {
  const { Product, rows, capture } = t.context;
  const { sql } = await capture(() => withTenant(1, () => Product.upsert({ id: 1, name: 'apple-A-up', price: 1 })));
  t.regex(sql[0] as string, /ON CONFLICT \("id","store_id"\) DO UPDATE SET/);
  t.notRegex(/DO UPDATE SET (.*) RETURNING/.exec(sql[0] as string)?.[1] ?? '', /store_id/);
  const all = await rows('products');
  t.is(product(all, 1, 1)?.name, 'apple-A-up');
  t.is(product(all, 1, 2)?.name, 'apple-B');
  await withTenant(2, () => Product.upsert({ id: 7, name: 'new-B' }));
  t.is(product(await rows('products'), 7, 2)?.name, 'new-B');
});

pgOnly(test)('upsert whose conflict target lacks the tenant column is refused: no takeover of another tenant row', async (t) => {
  const { Purchase, rows } = t.context;
  const before = await rows('purchases');
  const err = await t.throwsAsync(() => withTenant(1, () => Purchase.upsert({ id: 2, product_id: 1, qty: 99 })), {
    instanceOf: TenantMismatchError,
  });
  t.regex(err?.message ?? '', /ON CONFLICT \(id\) does not include the tenant column store_id/);
  t.regex(err?.message ?? '', /conflictFields/);
  t.deepEqual(await rows('purchases'), before);
});

pgOnly(test)('bulkCreate updateOnDuplicate: scoped with a tenant key, refused without', async (t) => {
  const { Product, Purchase, Coupon, rows, capture } = t.context;
  const { sql } = await capture(() =>
    withTenant(2, () => Product.bulkCreate([{ id: 1, name: 'apple-B2', price: 1 }], { updateOnDuplicate: ['name', 'store_id'] })),
  );
  t.regex(sql[0] as string, /ON CONFLICT \("id","store_id"\) DO UPDATE SET "name"=EXCLUDED."name"/);
  t.notRegex(/DO UPDATE SET (.*) RETURNING/.exec(sql[0] as string)?.[1] ?? '', /store_id/);
  const all = await rows('products');
  t.is(product(all, 1, 2)?.name, 'apple-B2');
  t.is(product(all, 1, 1)?.name, 'apple-A');
  const before = await rows('purchases');
  await t.throwsAsync(() => withTenant(1, () => Purchase.bulkCreate([{ id: 2, product_id: 1, qty: 9 }], { updateOnDuplicate: ['qty'] })), {
    instanceOf: TenantMismatchError,
  });
  t.deepEqual(await rows('purchases'), before);
  await withTenant(1, () => Coupon.bulkCreate([{ code: 'ONLYB', uses: 1 }], { updateOnDuplicate: ['uses'] }));
  const coupons = await rows('coupons', 'code, shop_ref');
  t.deepEqual(
    coupons.filter((c) => c.code === 'ONLYB').map((c) => [String(c.shop_ref), c.uses]),
    [
      ['1', 1],
      ['2', 3],
    ],
  );
});

test.serial('ignoreDuplicates (ON CONFLICT DO NOTHING) inserts the tenant row and leaves the other tenant alone', async (t) => {
  const { Coupon, rows } = t.context;
  await withTenant(1, () => Coupon.bulkCreate([{ code: 'SAVE', uses: 9 }, { code: 'FRESH' }], { ignoreDuplicates: true }));
  const all = await rows('coupons', 'code, shop_ref');
  t.deepEqual(
    all.map((c) => [c.code, String(c.shop_ref), c.uses]),
    [
      ['FRESH', '1', 0],
      ['ONLYB', '2', 3],
      ['SAVE', '1', 0],
      ['SAVE', '2', 0],
    ],
  );
});

test.serial('individualHooks: the find Sequelize runs first and the write itself are both scoped', async (t) => {
  const { Product, rows, capture } = t.context;
  const { result, sql } = await capture(() =>
    withTenant(2, () => Product.update({ price: 1 }, { where: { id: 1 }, individualHooks: true })),
  );
  t.is(result[0], 1);
  t.true(sql.length >= 2);
  for (const s of sql) t.regex(s, /store_id" = 2/);
  await withTenant(1, () => Product.destroy({ where: { id: 1 }, individualHooks: true }));
  const all = await rows('products');
  t.is(product(all, 1, 2)?.price, 1);
  t.falsy(product(all, 1, 1));
  t.truthy(product(all, 1, 2));
});

test.serial('hooks: false does not bypass scoping (it is applied below the hooks)', async (t) => {
  const { Product, rows } = t.context;
  await withTenant(1, async () => {
    const noHooks = { hooks: false } as object; // accepted by Sequelize at run time, absent from its types
    t.is((await Product.findAll(noHooks)).length, 2);
    t.is(await Product.count(noHooks), 2);
    await Product.update({ price: 2 }, { where: {}, hooks: false });
    await Product.destroy({ where: { id: 2 }, hooks: false });
  });
  const all = await rows('products');
  t.deepEqual(
    all.filter((r) => r.store_id === 1).map((r) => r.price),
    [2],
  );
  t.deepEqual(
    all.filter((r) => r.store_id === 2).map((r) => r.price),
    [11, 21, 31],
  );
});

test.serial('raw sequelize.query is not rewritten (on Citus, routerOnly catches it fanning out)', async (t) => {
  const { sequelize } = t.context;
  const raw = () => withTenant(1, () => sequelize.query('SELECT count(*)::int AS n FROM products'));
  if (auditMode === 'throw') {
    await t.throwsAsync(raw, { instanceOf: UnscopedQueryError });
    return;
  }
  if (onCitus) {
    await t.throwsAsync(raw, { message: /multi-task query about to be executed/ });
    return;
  }
  const [rows] = await raw();
  t.deepEqual(rows, [{ n: 5 }]);
});

test.serial(
  'every path to ON CONFLICT ... DO UPDATE is checked: create({ updateOnDuplicate }), queryInterface upsert/insert with any model or none',
  async (t) => {
    const { Note, Category, sequelize, rows, capture } = t.context;
    // biome-ignore lint/suspicious/noExplicitAny: the query interface's loose signatures
    const qi: any = sequelize.getQueryInterface();
    const before = await rows('notes');
    const { sql } = await capture(async () => {
      await t.throwsAsync(
        () =>
          withTenant(1, () =>
            Note.create({ id: 2, body: 'taken' }, { updateOnDuplicate: ['body', 'acc_id'], upsertKeys: ['id'] } as never),
          ),
        { instanceOf: TenantMismatchError, message: /ON CONFLICT \(id\) does not include the tenant column acc_id/ },
      );
      await t.throwsAsync(
        () => withTenant(1, () => qi.upsert('notes', { id: 2, body: 'taken' }, { body: 'taken' }, { id: 2 }, { model: Category })),
        {
          instanceOf: TenantMismatchError,
        },
      );
      await t.throwsAsync(
        () => withTenant(1, () => qi.insert(null, 'notes', { id: 2, body: 'taken' }, { updateOnDuplicate: ['body'], upsertKeys: ['id'] })),
        { instanceOf: TenantMismatchError },
      );
      await t.throwsAsync(
        () => withTenant(1, () => qi.bulkInsert('notes', [{ id: 2, body: 'taken' }], { updateOnDuplicate: ['body'], upsertKeys: ['id'] })),
        { instanceOf: TenantMismatchError },
      );
    });
    t.deepEqual(
      sql.filter((s) => /^INSERT/.test(s)),
      [],
    );
    t.deepEqual(await rows('notes'), before);
  },
);

test.serial('an instance read without its tenant column, written under another tenant: refused, nothing written', async (t) => {
  const { sequelize, Purchase, Product } = t.context;
  // The declared key is id; the table's key is (store_id, id): tenants share ids.
  await withoutTenant(async () => {
    await sequelize.query(
      'CREATE TABLE IF NOT EXISTS tickets (store_id int NOT NULL, id int NOT NULL, title text, hits int NOT NULL DEFAULT 0, product_id int, PRIMARY KEY (store_id, id))',
    );
    await sequelize.query(`TRUNCATE tickets; INSERT INTO tickets VALUES (1, 1, 'a1', 0, 1), (2, 1, 'b1', 0, 1)`);
  });
  const Ticket = sequelize.define(
    'Ticket',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true },
      store_id: { type: DataTypes.INTEGER, allowNull: false },
      title: DataTypes.STRING,
      hits: DataTypes.INTEGER,
      product_id: DataTypes.INTEGER,
    },
    { tableName: 'tickets', timestamps: false, tenantKey: 'store_id' },
  );
  Product.hasMany(Ticket, { foreignKey: 'product_id', constraints: false });
  const tickets = async () => (await withoutTenant(() => sequelize.query('SELECT * FROM tickets ORDER BY store_id, id')))[0];
  try {
    const before = await tickets();
    const partial = await withTenant(2, () => Ticket.findOne({ where: { id: 1 }, attributes: ['id', 'title', 'hits'] }));
    if (!partial) return t.fail();
    t.is(partial.get('store_id'), undefined);
    partial.set('title', 'wrong row');
    await t.throwsAsync(() => withTenant(1, () => partial.save()), { instanceOf: TenantMismatchError, message: /read under tenant 2/ });
    // the same for a row read as an include, and for a row an UPDATE ... RETURNING gave back
    const parent = (await withTenant(2, () =>
      Product.findOne({ where: { id: 1 }, include: [{ model: Ticket, attributes: ['id', 'title'] }] }),
    )) as unknown as {
      Tickets: Array<{ update(v: object): Promise<unknown>; destroy(): Promise<unknown> }>;
    };
    await t.throwsAsync(() => withTenant(1, () => parent.Tickets[0]?.update({ title: 'via include' }) as Promise<unknown>), {
      instanceOf: TenantMismatchError,
    });
    await t.throwsAsync(() => withTenant(1, () => parent.Tickets[0]?.destroy() as Promise<unknown>), { instanceOf: TenantMismatchError });
    const [, [returned]] = (await withTenant(2, () =>
      Ticket.update({ hits: 0 }, { where: { id: 1 }, returning: ['id', 'title'] }),
    )) as unknown as [number, Array<{ update(v: object): Promise<unknown> }>];
    await t.throwsAsync(() => withTenant(1, () => returned?.update({ title: 'via returning' }) as Promise<unknown>), {
      instanceOf: TenantMismatchError,
    });
    await t.throwsAsync(() => withTenant(1, () => partial.increment('hits')), { instanceOf: TenantMismatchError });
    await t.throwsAsync(() => withTenant(1, () => partial.destroy()), { instanceOf: TenantMismatchError });
    t.deepEqual(await tickets(), before);
    // under its own tenant the same instance writes its own row
    await withTenant(2, () => partial.save());
    t.deepEqual(
      (await tickets()).map((r) => (r as { title: string }).title),
      ['a1', 'wrong row'],
    );
    // under several tenants a write through an instance is narrowed to the instance's own tenant
    const own = await withTenant(1, () => Ticket.findOne({ where: { id: 1 } }));
    own?.set('title', 'only a1');
    await withTenant([1, 2], () => own?.save());
    await withTenant([1, 2], () => own?.increment('hits'));
    t.deepEqual(
      (await tickets()).map((r) => [(r as { title: string }).title, (r as { hits: number }).hits]),
      [
        ['only a1', 1],
        ['wrong row', 0],
      ],
    );
    // association methods: a target read without its tenant column under another tenant is refused
    const purchase = await withTenant(2, () => Purchase.findOne({ where: { id: 2 }, attributes: ['id'] }));
    const apple = await withTenant(1, () => Product.findOne({ where: { id: 1 } }));
    // biome-ignore lint/suspicious/noExplicitAny: association method
    await t.throwsAsync(() => withTenant(1, () => (apple as any).addPurchase(purchase)), { instanceOf: TenantMismatchError });
  } finally {
    await withoutTenant(() => sequelize.query('DROP TABLE tickets'));
    sequelize.modelManager.removeModel(Ticket);
    delete (Product as unknown as { associations: Record<string, unknown> }).associations.Tickets;
  }
});

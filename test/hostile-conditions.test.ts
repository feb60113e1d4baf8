// Conditions of every shape the application can write — object, array, literal, sequelize.where, Op.or,
// Op.not, a literal value under a key — with OR at their top level: the tenant predicate is ANDed to them
// as one closed term, in the root WHERE, in every JOIN's ON, in through tables and in inner statements.
// Two tenants share primary keys; every test checks the rows of all tenants afterwards.
import anyTest, { type TestFn } from 'ava';
import { DataTypes, type Model, Op } from 'sequelize';
import { UnsafeConditionError, withoutTenant, withTenant } from '../src/index';
import { type Fixture, fixtureTests } from './helpers/fixture';

const test = fixtureTests(anyTest as TestFn<Fixture>);

// biome-ignore lint/suspicious/noExplicitAny: rows with includes
type Row = Model & Record<string, any>;
const names = (rows: Array<{ get(k: string): unknown }>) => rows.map((r) => r.get('name')).sort();

/** Every shape of "id = 1 OR id = 2" the application can hand to a where (all true for every tenant's rows 1 and 2). */
function widening(f: Fixture, prefix = '"Product".') {
  const { sequelize } = f;
  const lit = sequelize.literal(`${prefix}"id" = 1 OR ${prefix}"id" = 2`);
  return {
    literal: lit,
    'array with a literal': [{ name: { [Op.ne]: null } }, lit],
    'literal under Op.and': { [Op.and]: lit },
    'literal under Op.not': { [Op.not]: sequelize.literal('false OR true') },
    'literal as a value': { id: sequelize.literal('false OR true') },
    'literal under Op.eq': { id: { [Op.eq]: sequelize.literal('1 OR true') } },
    'literal under Op.in': { id: { [Op.in]: sequelize.literal('(1) OR (true)') } },
    'sequelize.where with a literal': sequelize.where(sequelize.literal('1'), Op.eq, sequelize.literal('1 OR true')),
    'Op.or of objects': { [Op.or]: [{ id: 1 }, { id: 2 }] },
    'object with a literal beside a key': { name: { [Op.ne]: null }, [Op.and]: [lit] },
  } as Record<string, unknown>;
}

test.serial('reads: a where of any shape with OR at its top stays inside the tenant (findAll, findOne, count, sum, scope)', async (t) => {
  const { Product } = t.context;
  for (const [shape, where] of Object.entries(widening(t.context))) {
    const rows = await withTenant(1, () => Product.findAll({ where: where as never }));
    t.deepEqual(
      rows.map((r) => r.get('store_id')).filter((s) => s !== 1),
      [],
      `findAll: ${shape}`,
    );
    t.true(rows.length > 0, `findAll found tenant 1 rows: ${shape}`);
    const one = await withTenant(2, () => Product.findOne({ where: where as never, order: [['store_id', 'ASC']] }));
    t.is(one?.get('store_id'), 2, `findOne: ${shape}`);
    t.true((await withTenant(1, () => Product.count({ where: where as never }))) <= 2, `count: ${shape}`);
    const sum = await withTenant(1, () => Product.sum('price', { where: where as never }));
    t.true((sum ?? 0) <= 30, `sum: ${shape}`);
  }
  Product.addScope('wide', { where: t.context.sequelize.literal('"Product"."id" = 1 OR "Product"."id" = 2') });
  t.deepEqual(names(await withTenant(1, () => Product.scope('wide').findAll())), ['apple-A', 'pear-A']);
});

test.serial('the SQL closes the application condition in parentheses before the tenant predicate', async (t) => {
  const { Product, sequelize, capture } = t.context;
  const { sql } = await capture(() =>
    withTenant(1, () => Product.findAll({ where: sequelize.literal('"Product"."id" = 1 OR "Product"."id" = 2') })),
  );
  t.regex(sql[0] as string, /WHERE \(\("Product"."id" = 1 OR "Product"."id" = 2\) AND "Product"."store_id" = 1\)/);
});

test.serial('the tenant table itself: a literal with OR does not reach other stores', async (t) => {
  const { Store, sequelize } = t.context;
  const rows = await withTenant(1, () => Store.findAll({ where: sequelize.literal('"Store"."id" = 2 OR "Store"."id" = 3') }));
  t.deepEqual(rows, []);
  const all = await withTenant(1, () => Store.findAll({ where: sequelize.literal('true OR false') }));
  t.deepEqual(
    all.map((s) => s.get('id')),
    [1],
  );
});

test.serial('writes: Model.update, destroy and paranoid restore with a literal OR change only the tenant rows', async (t) => {
  const { Product, Review, sequelize, rows } = t.context;
  const lit = sequelize.literal('"id" = 1 OR "id" = 2');
  await withTenant(1, () => Product.update({ price: 99 }, { where: lit }));
  t.deepEqual(
    (await rows('products', 'store_id, id')).map((r) => [r.store_id, r.id, r.price]),
    [
      [1, 1, 99],
      [1, 2, 99],
      [2, 1, 11],
      [2, 2, 21],
      [2, 3, 31],
    ],
  );
  await withTenant(2, () => Product.destroy({ where: sequelize.literal('true OR false') }));
  t.deepEqual(
    (await rows('products', 'store_id, id')).map((r) => [r.store_id, r.id]),
    [
      [1, 1],
      [1, 2],
    ],
  );
  await withoutTenant(() => Review.destroy({ where: {} }));
  await withTenant(1, () => Review.restore({ where: sequelize.literal('"id" = 1 OR "id" = 2') }));
  t.deepEqual(
    (await rows('reviews')).map((r) => [r.id, r.store_id, r.deleted_at === null]),
    [
      [1, 1, true],
      [2, 2, false],
    ],
  );
  await withTenant(1, () => Product.increment('stock', { where: { [Op.and]: [sequelize.literal('true OR true')] } }));
  t.deepEqual(
    (await rows('products', 'store_id, id')).map((r) => r.stock),
    [6, 6],
  );
});

test.serial('joins: include.on, include.where and through.where written as a literal with OR stay in the tenant', async (t) => {
  const { Product, Purchase, Tag, sequelize, capture } = t.context;
  const orQty = sequelize.literal('"Purchases"."qty" > 0 OR "Purchases"."qty" < 0');
  const shapes: Array<[string, Record<string, unknown>]> = [
    ['include.where', { model: Purchase, where: orQty, required: false }],
    ['include.where required', { model: Purchase, where: orQty }],
    ['include.where + or', { model: Purchase, where: orQty, or: true, required: false }],
    [
      'include.on',
      {
        model: Purchase,
        on: sequelize.literal('"Purchases"."product_id" = "Product"."id" OR "Purchases"."qty" > 0'),
        required: false,
      },
    ],
  ];
  for (const [shape, include] of shapes) {
    const { result, sql } = await capture(() => withTenant(1, () => Product.findAll({ include: [include as never] })));
    const stores = (result as Row[]).flatMap((p) => (p.Purchases as Row[]).map((u) => u.get('store_id')));
    t.deepEqual(
      stores.filter((s) => s !== 1),
      [],
      shape,
    );
    t.regex(sql[0] as string, /\) AND "Purchases"."store_id" = 1/, shape);
  }
  const tagged = (await withTenant(1, () =>
    Product.findAll({ include: [{ model: Tag, through: { where: sequelize.literal('"Tags->ProductTag"."id" > 0 OR true') } }] }),
  )) as Row[];
  const pairs = tagged.flatMap((p) => (p.Tags as Row[]).map((g) => [g.get('store_id'), g.ProductTag.get('store_id')]));
  t.true(pairs.length > 0);
  t.deepEqual(
    pairs.filter(([a, b]) => a !== 1 || b !== 1),
    [],
  );
  const limited = (await withTenant(1, () =>
    Product.findAll({ include: [{ model: Purchase, where: orQty }], limit: 5, subQuery: true }),
  )) as Row[];
  t.deepEqual(
    limited.flatMap((p) => (p.Purchases as Row[]).map((u) => u.get('store_id'))),
    [1],
  );
});

test.serial(
  'a literal that is not a closed term (unbalanced parentheses, a comment, a second statement) is refused, nothing sent',
  async (t) => {
    const { Product, Purchase, sequelize, capture } = t.context;
    const bad = [
      '"id" = 1) OR (true',
      'true) OR ((true',
      '"id" = 1 --',
      '"id" = 1 /* x */',
      '"id" = 1; DELETE FROM products',
      `"name" = 'x`,
      // PostgreSQL reads é$$ as a name, not as the start of a dollar-quoted string: the parentheses count
      '(SELECT true AS é$$) IS NOT NULL) OR ((SELECT true AS é$$) IS NOT NULL',
      // an E'' string only where E starts a token; a backslash in a plain string depends on a setting
      `éE'\\' ) OR (true'`,
      `"name" = 'a\\' ) OR (true --'`,
    ];
    const { sql } = await capture(async () => {
      for (const text of bad) {
        const err = await t.throwsAsync(() => withTenant(1, () => Product.findAll({ where: sequelize.literal(text) })), {
          instanceOf: UnsafeConditionError,
        });
        t.is(err?.model, 'Product');
        t.is(err?.fragment, text);
        await t.throwsAsync(() => withTenant(1, () => Product.update({ price: 0 }, { where: sequelize.literal(text) })), {
          instanceOf: UnsafeConditionError,
        });
        await t.throwsAsync(
          () => withTenant(1, () => Product.findAll({ include: [{ model: Purchase, where: sequelize.literal(text), required: false }] })),
          { instanceOf: UnsafeConditionError },
        );
      }
    });
    t.deepEqual(sql, []);
    // Balanced text with quoted parentheses, dollar quotes and identifiers is fine.
    const ok = await withTenant(1, () =>
      Product.findAll({ where: sequelize.literal(`"name" <> ')' AND "name" <> $q$(--$q$ AND "Product"."id" IN (1, 2)`) }),
    );
    t.deepEqual(names(ok), ['apple-A', 'pear-A']);
  },
);

test.serial('a cast type is checked as Sequelize sends it (upper-cased: ß becomes SS, a dollar-quote tag changes)', async (t) => {
  const { Product, sequelize, rows, capture } = t.context;
  const type = 'bpchar($éß$5$ÉSS$)) IS NOT NULL)) OR TRUE OR (((($éß$x$ÉSS$ IS NOT NULL)';
  const before = await rows('products', 'store_id, id');
  const { sql } = await capture(async () => {
    await t.throwsAsync(() => withTenant(1, () => Product.findAll({ where: sequelize.cast('a', type) as never })), {
      instanceOf: UnsafeConditionError,
    });
    await t.throwsAsync(() => withTenant(1, () => Product.update({ name: 'x' }, { where: sequelize.cast('a', type) as never })), {
      instanceOf: UnsafeConditionError,
    });
  });
  t.deepEqual(sql, []);
  t.deepEqual(await rows('products', 'store_id, id'), before);
});

test.serial(
  'the conditions of includes of global models, and of a global root, are checked too (a comment would cut off the tenant conditions)',
  async (t) => {
    const { Product, Category, sequelize, capture } = t.context;
    const comment = sequelize.literal('true --');
    const { sql } = await capture(async () => {
      for (const include of [
        { model: Category, on: comment },
        { model: Category, where: comment, required: false },
      ]) {
        await t.throwsAsync(() => withTenant(1, () => Product.findAll({ include: [include as never] })), {
          instanceOf: UnsafeConditionError,
        });
        await t.throwsAsync(() => withTenant(1, () => Product.count({ include: [include as never] })), {
          instanceOf: UnsafeConditionError,
        });
      }
      // a global root under a limit: its where sits before the tenant join in the SQL
      await t.throwsAsync(
        () => withTenant(1, () => Category.findAll({ where: sequelize.literal('true) AS x --'), include: [Product], limit: 1 })),
        { instanceOf: UnsafeConditionError },
      );
    });
    t.deepEqual(sql, []);
  },
);

test.serial('sequelize.json conditions: their raw path and unescaped values are checked like a literal', async (t) => {
  const { Product, sequelize, rows, capture } = t.context;
  const before = await rows('products', 'store_id, id');
  const { sql } = await capture(async () => {
    for (const where of [
      sequelize.json("data->>'a' IS NOT NULL OR true) OR (true"),
      sequelize.json({ data: { a: "x' OR true) OR ('1'='1" } }),
    ]) {
      await t.throwsAsync(() => withTenant(1, () => Product.findAll({ where: where as never })), { instanceOf: UnsafeConditionError });
      await t.throwsAsync(() => withTenant(1, () => Product.update({ price: 0 }, { where: where as never })), {
        instanceOf: UnsafeConditionError,
      });
    }
  });
  t.deepEqual(sql, []);
  t.deepEqual(await rows('products', 'store_id, id'), before);
});

test.serial('an inner statement carries the tenant too: destroy with limit on a model whose declared key lacks the tenant', async (t) => {
  const { sequelize, capture } = t.context;
  await withoutTenant(async () => {
    await sequelize.query(
      'CREATE TABLE IF NOT EXISTS items (store_id int NOT NULL, id int NOT NULL, label text, PRIMARY KEY (store_id, id))',
    );
    await sequelize.query(`TRUNCATE items; INSERT INTO items VALUES (1, 1, 'a1'), (2, 1, 'b1'), (3, 1, 'c1'), (1, 2, 'a2')`);
  });
  const Item = sequelize.define(
    'Item',
    { id: { type: DataTypes.INTEGER, primaryKey: true }, store_id: { type: DataTypes.INTEGER, allowNull: false }, label: DataTypes.STRING },
    { tableName: 'items', timestamps: false, tenantKey: 'store_id' },
  );
  const { result, sql } = await capture(() => withTenant(1, () => Item.destroy({ where: { id: 1 }, limit: 1 })));
  t.is(result, 1);
  t.regex(
    sql[0] as string,
    /^DELETE FROM "items" WHERE "store_id" = 1 AND "id" IN \(SELECT "id" FROM "items" WHERE .*"store_id" = 1 LIMIT 1\)/,
  );
  const [left] = await withoutTenant(() => sequelize.query('SELECT store_id, id FROM items ORDER BY store_id, id'));
  t.deepEqual(left, [
    { store_id: 1, id: 2 },
    { store_id: 2, id: 1 },
    { store_id: 3, id: 1 },
  ]);
  await withoutTenant(() => sequelize.query('DROP TABLE items'));
  sequelize.modelManager.removeModel(Item);
});

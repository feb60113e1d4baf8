// The application's own hooks, and plugins keyed on find options, see the tenant: the library registers
// model-level beforeFind / beforeCount / beforeBulkUpdate / beforeBulkDestroy hooks that run before any
// hook of the application, while the query-interface layer stays the guarantee (and adds no second
// predicate to the SQL).
import anyTest, { type TestFn } from 'ava';
import { DataTypes, type FindOptions, Op, type WhereOptions } from 'sequelize';
import { withoutTenant, withTenant } from '../src/index';
import { HOOK_NAME } from '../src/scope/hooks';
import { createFixture, type Fixture } from './helpers/fixture';

const test = anyTest as TestFn<Fixture>;
test.before(async (t) => {
  t.context = await createFixture();
});
test.after.always(async (t) => t.context?.close());
test.beforeEach(async (t) => t.context.reset());

/** Occurrences of the products tenant predicate in one statement. */
const predicates = (sql: string, column = 'store_id') =>
  sql.split(`."${column}" = `).length - 1 + (sql.split(`"${column}" IN (`).length - 1);

/** The conditions a where holds on `key` in AND position (string keys and nested Op.and). */
function pinned(where: unknown, key: string): unknown[] {
  if (!where || typeof where !== 'object') return [];
  const w = where as Record<string | symbol, unknown>;
  const found: unknown[] = Object.hasOwn(w, key) ? [w[key]] : [];
  const and = w[Op.and];
  for (const item of Array.isArray(and) ? and : and ? [and] : []) found.push(...pinned(item, key));
  return found;
}

test.serial('a hook added with Model.addHook sees the tenant predicate in options.where of find, count, update and destroy', async (t) => {
  const { Product } = t.context;
  const seen: Array<[string, unknown[]]> = [];
  const names = ['beforeFind', 'beforeCount', 'beforeBulkUpdate', 'beforeBulkDestroy'] as const;
  for (const name of names) {
    Product.addHook(name, 'app-spy', (options: { where?: unknown }) => {
      // beforeBulkDestroy runs after Sequelize mapped attribute names to columns (store_id either way here)
      seen.push([name, pinned(options.where, 'store_id')]);
    });
  }
  try {
    await withTenant(2, async () => {
      t.is((await Product.findAll({ where: { price: { [Op.gt]: 0 } } })).length, 3);
      t.is(await Product.count(), 3);
      await Product.update({ stock: 1 }, { where: { id: 1 } });
      await Product.destroy({ where: { id: 3 } });
    });
  } finally {
    for (const name of names) Product.removeHook(name, 'app-spy');
  }
  t.deepEqual(seen, [
    ['beforeFind', [2]],
    ['beforeCount', [2]],
    ['beforeBulkUpdate', [2]],
    ['beforeBulkDestroy', [2]],
  ]);
  const rows = await t.context.rows('products', 'store_id, id');
  t.deepEqual(
    rows.map((r) => [r.store_id, r.id, r.stock]),
    [
      [1, 1, 5],
      [1, 2, 5],
      [2, 1, 1],
      [2, 2, 7],
    ],
  );
});

test.serial('hooks given in init, and universal sequelize.addHook hooks, see it too; under several tenants as a list', async (t) => {
  const { sequelize } = t.context;
  const seen: unknown[] = [];
  const Hooked = sequelize.define(
    'HookedProduct',
    { id: { type: DataTypes.INTEGER, primaryKey: true }, store_id: { type: DataTypes.INTEGER, primaryKey: true }, name: DataTypes.STRING },
    {
      tableName: 'products',
      timestamps: false,
      tenantKey: 'store_id',
      hooks: { beforeFind: (options: FindOptions) => void seen.push(['init', pinned(options.where, 'store_id')]) },
    },
  );
  const universal = (options: FindOptions) => void seen.push(['universal', pinned(options.where, 'store_id')]);
  sequelize.addHook('beforeFind', 'universal-spy', universal);
  try {
    t.deepEqual(
      (await withTenant(1, () => Hooked.findAll({ order: [['id', 'ASC']] }))).map((p) => p.get('name')),
      ['apple-A', 'pear-A'],
    );
    t.is((await withTenant([1, 2], () => Hooked.findAll({ where: { id: 1 } }))).length, 2);
    await withoutTenant(() => Hooked.findAll({ where: { id: 1 } }));
  } finally {
    sequelize.removeHook('beforeFind', 'universal-spy');
    sequelize.modelManager.removeModel(Hooked);
  }
  t.deepEqual(seen, [
    ['init', [1]],
    ['universal', [1]],
    ['init', [[1, 2]]],
    ['universal', [[1, 2]]],
    ['init', []],
    ['universal', []],
  ]);
});

test.serial('a small query cache keyed on options.where in hooks never serves one tenant the rows of another', async (t) => {
  const { Product } = t.context;
  // The shape of a hook-based cache plugin: the key is computed in beforeFind, rows are stored (or
  // served) in afterFind. Keyed by JSON: the tenant must be a plain key to be part of it.
  const cache = new Map<string, unknown[]>();
  const KEY = Symbol('cacheKey');
  let hits = 0;
  const keys: string[] = [];
  Product.addHook('beforeFind', 'cache', (options: FindOptions & { [KEY]?: string }) => {
    options[KEY] = JSON.stringify(options.where ?? null);
    keys.push(options[KEY]);
  });
  Product.addHook('afterFind', 'cache', (result: unknown, options: FindOptions & { [KEY]?: string }) => {
    const key = options[KEY] as string;
    if (!Array.isArray(result)) return;
    const cached = cache.get(key);
    if (cached) {
      hits++;
      result.splice(0, result.length, ...cached);
    } else cache.set(key, [...result]);
  });
  try {
    const names = async (tenant: number) =>
      withTenant(tenant, async () =>
        (await Product.findAll({ where: { name: { [Op.ne]: 'x' } }, order: [['id', 'ASC']] })).map((p) => p.get('name')),
      );
    const byId = async (tenant: number) => withTenant(tenant, async () => (await Product.findByPk(1))?.get('name'));
    t.deepEqual(await names(1), ['apple-A', 'pear-A']);
    t.deepEqual(await names(2), ['apple-B', 'pear-B', 'plum-B']);
    t.deepEqual(await names(1), ['apple-A', 'pear-A']);
    t.is(await byId(1), 'apple-A');
    t.is(await byId(2), 'apple-B');
    // (findByPk's result is one instance, which this cache does not serve: its keys are compared instead)
    t.is(hits, 1);
    t.is(cache.size, 2);
    t.deepEqual(keys.slice(3), ['{"id":1,"store_id":1}', '{"id":1,"store_id":2}']);
  } finally {
    Product.removeHook('beforeFind', 'cache');
    Product.removeHook('afterFind', 'cache');
  }
});

test.serial('the SQL carries the tenant predicate once, with and without hooks, for every shape of where', async (t) => {
  const { Product, Review, sequelize, capture } = t.context;
  const wheres: Array<[string, WhereOptions | undefined]> = [
    ['none', undefined],
    ['flat', { id: 1 }],
    ['operator', { price: { [Op.gt]: 0 } }],
    ['or', { [Op.or]: [{ id: 1 }, { id: 2 }] }],
    ['literal', sequelize.literal('price > 0')],
    ['own tenant key', { store_id: 2 }],
    ['own tenant key in a list', { store_id: [1, 2] }],
  ];
  for (const hooks of [true, false]) {
    for (const [label, where] of wheres) {
      const options = { where, hooks } as FindOptions;
      const { sql, result } = await capture(() => withTenant(2, () => Product.findAll(options)));
      t.true(
        result.every((p) => p.get('store_id') === 2),
        `${label} hooks=${hooks}`,
      );
      t.is(predicates(sql.join('\n')), label === 'own tenant key in a list' ? 2 : 1, `${label} hooks=${hooks}: ${sql.join('\n')}`);
    }
  }
  // paranoid (deleted_at IS NULL is added after beforeFind), underscored: attribute storeId, column store_id
  for (const hooks of [true, false]) {
    const { sql, result } = await capture(() => withTenant(2, () => Review.findAll({ where: { stars: 2 }, hooks } as FindOptions)));
    t.is(result.length, 1);
    t.is(predicates(sql.join('\n')), 1, sql.join('\n'));
    const counted = await capture(() => withTenant(2, () => Review.count({ where: { stars: { [Op.gte]: 0 } }, hooks } as FindOptions)));
    t.is(counted.result, 1);
    t.is(predicates(counted.sql.join('\n')), 1, counted.sql.join('\n'));
  }
});

test.serial('a hook that widens the where after ours (an OR around it, another tenant) widens nothing', async (t) => {
  const { Product, capture } = t.context;
  const widen = [
    (o: { where?: unknown }) => {
      o.where = { [Op.or]: [o.where as object, { id: { [Op.gt]: 0 } }] };
    },
    (o: { where?: unknown }) => {
      (o.where as Record<string, unknown>).store_id = 1;
    },
    (o: { where?: unknown }) => {
      o.where = undefined;
    },
    (o: { where?: unknown }) => {
      o.where = { [Op.and]: [{ id: { [Op.gt]: 0 } }, { [Op.or]: [{ store_id: 2 }, { store_id: 1 }] }] };
    },
  ];
  for (const [i, hook] of widen.entries()) {
    Product.addHook('beforeFind', 'widen', hook);
    Product.addHook('beforeBulkUpdate', 'widen', hook);
    Product.addHook('beforeBulkDestroy', 'widen', hook);
    try {
      const { result } = await capture(() => withTenant(2, () => Product.findAll({ where: { price: { [Op.gt]: 0 } } })));
      t.true(
        result.every((p) => p.get('store_id') === 2),
        `hook ${i}`,
      );
      await withTenant(2, () => Product.update({ stock: 99 }, { where: { price: { [Op.gt]: 0 } } }));
      await withTenant(2, () => Product.destroy({ where: { price: 10 } }));
    } finally {
      Product.removeHook('beforeFind', 'widen');
      Product.removeHook('beforeBulkUpdate', 'widen');
      Product.removeHook('beforeBulkDestroy', 'widen');
    }
    const a = (await t.context.rows('products', 'store_id, id')).filter((r) => r.store_id === 1);
    t.deepEqual(
      a.map((r) => [r.id, r.stock]),
      [
        [1, 5],
        [2, 5],
      ],
      `hook ${i}`,
    );
  }
});

test.serial('creates: the application hooks see the stamped tenant on the instance', async (t) => {
  const { Product } = t.context;
  const seen: Array<[string, unknown]> = [];
  Product.addHook('beforeValidate', 'spy', (p: { get(k: string): unknown }) => void seen.push(['beforeValidate', p.get('store_id')]));
  Product.addHook('beforeCreate', 'spy', (p: { get(k: string): unknown }) => void seen.push(['beforeCreate', p.get('store_id')]));
  Product.addHook('beforeBulkCreate', 'spy', (ps: Array<{ get(k: string): unknown }>) => {
    for (const p of ps) seen.push(['beforeBulkCreate', p.get('store_id')]);
  });
  try {
    await withTenant(2, async () => {
      await Product.create({ id: 20, name: 'kiwi-B' });
      await Product.bulkCreate([{ id: 21, name: 'fig-B' }]);
    });
  } finally {
    for (const name of ['beforeValidate', 'beforeCreate', 'beforeBulkCreate'] as const) Product.removeHook(name, 'spy');
  }
  t.deepEqual(seen, [
    ['beforeValidate', 2],
    ['beforeCreate', 2],
    ['beforeBulkCreate', 2],
  ]);
});

test.serial(
  'a where that names the current tenant outside AND position, or beside raw SQL, still returns that tenant only (hooks off, queryInterface)',
  async (t) => {
    const { Product, sequelize } = t.context;
    const lit = (s: string) => sequelize.literal(s);
    const shapes: Array<[string, WhereOptions]> = [
      ['Op.or', { [Op.or]: [{ store_id: 2 }, { price: { [Op.gt]: 0 } }] }],
      ['Op.not', { [Op.not]: { store_id: 1 } }],
      ['Op.or inside Op.and', { [Op.and]: [{ [Op.or]: [{ store_id: 2 }, { id: { [Op.gt]: 0 } }] }] }],
      ['Op.or as the value', { store_id: { [Op.or]: [2, 1] } }],
      ['a list with another tenant', { store_id: [2, 1] }],
      ['pinned beside an OR with a literal', { store_id: 2, [Op.or]: [{ id: 1 }, lit('true')] }],
      ['pinned beside a literal value with OR', { name: lit(`name = 'x' OR true`), store_id: 2 }],
      ['sequelize.and with a literal OR', sequelize.and({ store_id: 2 }, lit('true OR true'))],
      ['pinned in Op.and beside a literal OR', { [Op.and]: [lit('true OR true'), { store_id: 2 }] }],
      ['pinned deep in Op.and', { [Op.and]: [{ [Op.and]: [{ store_id: 2 }, lit('1 = 1 OR 1 = 1')] }, { id: { [Op.gt]: 0 } }] }],
    ];
    const qi = sequelize.getQueryInterface();
    for (const [label, where] of shapes) {
      const found = await withTenant(2, () => Product.findAll({ where, hooks: false } as FindOptions));
      t.true(found.length > 0 && found.every((p) => p.get('store_id') === 2), `findAll: ${label}`);
      const counted = await withTenant(2, () => Product.count({ where, hooks: false } as FindOptions));
      t.true(counted <= 3, `count: ${label}`);
      const raw = (await withTenant(2, () => qi.select(null, 'products', { where }))) as Array<{ store_id: number }>;
      t.true(
        raw.every((r) => r.store_id === 2),
        `queryInterface.select: ${label}`,
      );
      await withTenant(2, () => Product.update({ stock: 42 }, { where, hooks: false }));
    }
    const others = (await t.context.rows('products', 'store_id, id')).filter((r) => r.store_id !== 2);
    t.deepEqual(
      others.map((r) => r.stock),
      [5, 5],
    );
  },
);

test.serial('the library hook is not run when no other hook would see it, and runs as soon as one would (#28)', async (t) => {
  const { Product, sequelize, capture } = t.context;
  const types = ['beforeFind', 'beforeCount', 'beforeBulkUpdate', 'beforeBulkDestroy', 'beforeBulkRestore'] as const;
  type Entry = { name?: string; fn: (options: { where?: unknown }) => unknown };
  const hooks = (Product as unknown as { options: { hooks: Record<string, Entry[]> } }).options.hooks;
  // count the library's own hook runs, through the entries Sequelize holds
  const runs: string[] = [];
  const originals = new Map<string, Entry['fn']>();
  for (const type of types) {
    const entry = hooks[type]?.find((h) => h.name === HOOK_NAME) as Entry;
    originals.set(type, entry.fn);
    entry.fn = (options) => {
      runs.push(type);
      return (originals.get(type) as Entry['fn'])(options);
    };
  }
  const seen: unknown[] = [];
  const spy = (label: string) => (options: { where?: unknown }) => void seen.push([label, pinned(options.where, 'store_id')]);
  try {
    // alone: not run; the statement is scoped all the same
    const alone = await capture(() =>
      withTenant(2, async () => [
        await Product.findAll({ where: { id: 1 } }),
        await Product.count(),
        await Product.update({ stock: 4 }, { where: { id: 1 } }),
      ]),
    );
    t.deepEqual(runs, []);
    t.is((alone.result[0] as unknown[]).length, 1);
    t.is(alone.result[1], 3);
    t.true(
      alone.sql.every((s) => s.split('"store_id" = 2').length === 2),
      alone.sql.join('\n'),
    );
    // a universal hook alone on the instance: run, and it sees the tenant
    sequelize.addHook('beforeFind', 'universal-only', spy('universal'));
    await withTenant(2, () => Product.findAll({ where: { id: 1 } }));
    sequelize.removeHook('beforeFind', 'universal-only');
    // a model hook added after queries ran: seen at the next call
    Product.addHook('beforeCount', 'late', spy('late'));
    await withTenant(1, () => Product.count());
    Product.removeHook('beforeCount', 'late');
    t.deepEqual(runs, ['beforeFind', 'beforeCount']);
    // the library's hook removed and one of the application's in its place: the application's runs
    Product.removeHook('beforeFind', HOOK_NAME);
    Product.addHook('beforeFind', 'only-app', spy('only-app'));
    const replaced = await capture(() => withTenant(2, () => Product.findAll({ where: { id: 1 } })));
    Product.removeHook('beforeFind', 'only-app');
    t.is(replaced.result.length, 1);
    t.is(replaced.result[0]?.get('store_id'), 2);
    t.is(predicates(replaced.sql.join('\n')), 1, replaced.sql.join('\n'));
    t.deepEqual(seen, [
      ['universal', [2]],
      ['late', [1]],
      ['only-app', []],
    ]);
  } finally {
    for (const type of types) {
      const list = hooks[type] ?? [];
      const entry = list.find((h) => h.name === HOOK_NAME);
      if (entry) entry.fn = originals.get(type) as Entry['fn'];
      else hooks[type] = [{ name: HOOK_NAME, fn: originals.get(type) as Entry['fn'] }, ...list];
    }
  }
});

// A tenant string for an integer tenant column is read the way PostgreSQL reads it: '01', '+1' and ' 1'
// are tenant 1 for reads, writes, the checks on rows read back and raw SQL under row-level security
// alike; '1.0', '1e0', '0x1', '1_000' (which PostgreSQL 15 does not read as an integer) are refused
// with InvalidTenantError before any SQL. UUIDs compare without regard to letter case; text tenants are
// taken as written ('01' and '1' are two tenants).
import anyTest, { type TestFn } from 'ava';
import { type DataType, DataTypes, type Model, type ModelStatic, QueryTypes, Sequelize } from 'sequelize';
import { InvalidTenantError, multitenant, UnscopedQueryError, withoutTenant, withTenant } from '../src/index';
import { auditMode } from './helpers/fixture';
import { createRlsDatabase, type RlsDatabase } from './helpers/rls';

// biome-ignore lint/suspicious/noExplicitAny: test models
type AnyModel = ModelStatic<Model<any, any>>;
interface Ctx {
  db: RlsDatabase;
  s: Sequelize;
  Item: AnyModel;
  Small: AnyModel;
  Doc: AnyModel;
  Note: AnyModel;
}
const test = anyTest as TestFn<Ctx>;
const ORG = '6f1c2a9e-1b7a-4c55-9a53-0d1e2f3a4b5c';

test.before(async (t) => {
  const db = await createRlsDatabase();
  const s = new Sequelize(db.url, { logging: false, ...db.connectOptions() });
  multitenant(s, { notice: false, rls: true });
  const key = (type: DataType) => ({ type, primaryKey: true, allowNull: false });
  /** A tenant model `name` on `table`, its tenant column `column` of `type`, keyed (column, id). */
  const tenantModel = (name: string, table: string, column: string, type: DataType, idType: DataType = type) =>
    s.define(
      name,
      { [column]: key(type), id: key(idType), name: DataTypes.STRING },
      { timestamps: false, tableName: table, tenantKey: column },
    );
  const Item = tenantModel('Item', 'items', 'store_id', DataTypes.BIGINT);
  const Small = tenantModel('Small', 'smalls', 'shop', DataTypes.INTEGER);
  const Doc = tenantModel('Doc', 'docs', 'org', DataTypes.UUID, DataTypes.INTEGER);
  const Note = tenantModel('Note', 'notes', 'team', DataTypes.STRING, DataTypes.INTEGER);
  await s.sync();
  await withoutTenant(async () => {
    await Item.bulkCreate([1, 2].map((store_id) => ({ store_id, id: 1, name: `i${store_id}` })));
    await Small.bulkCreate([1, 2].map((shop) => ({ shop, id: 1, name: `s${shop}` })));
    await Doc.bulkCreate([{ org: ORG, id: 1, name: 'd' }]);
    await Note.bulkCreate(['1', '01'].map((team) => ({ team, id: 1, name: `n${team}` })));
  });
  t.context = { db, s, Item, Small, Doc, Note };
});
test.after.always(async (t) => {
  await t.context?.s?.close();
  await t.context?.db?.drop();
});

for (const given of ['01', '+1', ' 1', '001', '1']) {
  test.serial(`integer columns: ${JSON.stringify(given)} is tenant 1 for reads, writes and raw SQL`, async (t) => {
    const { s, Item, Small } = t.context;
    await withTenant(given, async () => {
      for (const M of [Item, Small]) {
        const rows = await M.findAll();
        t.deepEqual(
          rows.map((r) => r.get('name')),
          [M === Item ? 'i1' : 's1'],
        );
        // a row read under the tenant is saved, reloaded, changed and destroyed under it
        const row = rows[0] as Model;
        await row.update({ name: `${row.get('name')}!` });
        await row.reload();
        await M.update({ name: `${row.get('name')}?` }, { where: { id: 1 } });
        const made = await M.create({ id: 7, name: 'new' });
        await made.destroy();
      }
      const raw = () => s.query('SELECT name FROM items', { type: QueryTypes.SELECT });
      if (auditMode === 'throw') {
        // the auditor refuses the unscoped raw read before row-level security could filter it
        await t.throwsAsync(raw, { instanceOf: UnscopedQueryError });
      } else t.deepEqual(await raw(), [{ name: 'i1!?' }], 'raw SQL, row-level security');
    });
    t.deepEqual(
      (await withoutTenant(() => Item.findAll({ order: [['store_id', 'ASC']] }))).map((r) => [String(r.get('store_id')), r.get('name')]),
      [
        ['1', 'i1!?'],
        ['2', 'i2'],
      ],
    );
    await withoutTenant(() => Item.update({ name: 'i1' }, { where: { store_id: 1 } }));
    await withoutTenant(() => Small.update({ name: 's1' }, { where: { shop: 1 } }));
  });
}

test.serial('integer columns: an id out of the column type’s range is refused before any SQL', async (t) => {
  const { Item, Small } = t.context;
  const sent: string[] = [];
  const logging = (sql: string) => sent.push(sql);
  for (const [M, given] of [
    [Item, '9223372036854775808'],
    [Item, -(2n ** 63n) - 1n],
    [Small, '2147483648'],
    [Small, 2147483648],
    [Small, ' -2147483649'],
  ] as const) {
    await t.throwsAsync(() => withTenant(given, () => M.findAll({ logging })), { instanceOf: InvalidTenantError, message: /does not fit/ });
  }
  t.deepEqual(sent, []);
  // the limits themselves fit
  t.deepEqual(await withTenant('9223372036854775807', () => Item.findAll()), []);
  t.deepEqual(await withTenant(-2147483648, () => Small.findAll()), []);
});

for (const given of ['1.0', '1e0', '0x1', '1_000', '١']) {
  test.serial(`integer columns: ${JSON.stringify(given)} is refused before any SQL`, async (t) => {
    const { Item } = t.context;
    const sent: string[] = [];
    await t.throwsAsync(() => withTenant(given, () => Item.findAll({ logging: (sql: string) => sent.push(sql) })), {
      instanceOf: InvalidTenantError,
    });
    await t.throwsAsync(() => withTenant(given, () => Item.create({ id: 9, name: 'x' }, { logging: (sql: string) => sent.push(sql) })), {
      instanceOf: InvalidTenantError,
    });
    t.deepEqual(sent, []);
    t.is(await withoutTenant(() => Item.count({ where: { id: 9 } })), 0);
  });
}

test.serial('UUID columns compare without regard to letter case', async (t) => {
  const { Doc } = t.context;
  await withTenant(ORG.toUpperCase(), async () => {
    const [doc] = await Doc.findAll();
    t.is(doc?.get('name'), 'd');
    await (doc as Model).update({ name: 'D' });
    const made = await Doc.create({ id: 2, name: 'e' });
    t.is(String(made.get('org')).toLowerCase(), ORG);
  });
  t.deepEqual(
    (await withTenant(ORG, () => Doc.findAll({ order: [['id', 'ASC']] }))).map((d) => d.get('name')),
    ['D', 'e'],
  );
});

test.serial('text columns take the tenant as written: 01 and 1 are two tenants', async (t) => {
  const { Note } = t.context;
  t.deepEqual(
    (await withTenant('01', () => Note.findAll())).map((n) => n.get('name')),
    ['n01'],
  );
  t.deepEqual(
    (await withTenant('1', () => Note.findAll())).map((n) => n.get('name')),
    ['n1'],
  );
});

// A tenantKey that names nothing: refused when the model is defined when it is one typo away from an
// attribute or column; said at the end of the tick when nothing defined right after (an association)
// added it; an error naming the attributes at first use either way.
import test from 'ava';
import { DataTypes, Sequelize } from 'sequelize';
import { MultitenantError, multitenant, withTenant } from '../src/index';

/** A Sequelize instance that never connects: defining models and installing the plugin send nothing. */
function instance(notices: string[]): Sequelize {
  const sequelize = new Sequelize('postgres://nobody@127.0.0.1:1/none', { logging: false });
  multitenant(sequelize, { notice: (m) => notices.push(m) });
  return sequelize;
}
const tick = () => new Promise((resolve) => setImmediate(resolve));

test('a misspelt tenantKey fails at define, says what it meant and lists the attributes; the model is not kept', (t) => {
  const sequelize = instance([]);
  const attributes = {
    id: { type: DataTypes.BIGINT, primaryKey: true },
    store_id: { type: DataTypes.BIGINT, primaryKey: true },
    name: DataTypes.STRING,
  };
  for (const typo of ['storId', 'store_di', 'Store_ID', 'storeid', 'storeId']) {
    const err = t.throws(() => sequelize.define('Product', attributes, { tenantKey: typo }), { instanceOf: MultitenantError });
    t.is(err?.model, 'Product');
    t.is(err?.operation, 'define');
    t.is(
      err?.message,
      `Product.define: tenantKey '${typo}' names no attribute or column of this model — did you mean 'store_id'? (attributes: id, store_id, name, createdAt, updatedAt) (current tenant: none)`,
    );
    t.false(sequelize.isDefined('Product'));
  }
  // by column name too: attribute storeId, column store_id
  const err = t.throws(
    () =>
      sequelize.define(
        'Doc',
        { storeId: { type: DataTypes.INTEGER, field: 'shop_ref' }, title: DataTypes.STRING },
        { tenantKey: 'shop_rf' },
      ),
    { instanceOf: MultitenantError },
  );
  t.regex(err?.message ?? '', /did you mean 'shop_ref'\?/);
  t.notThrows(() => sequelize.define('Doc2', { storeId: { type: DataTypes.INTEGER, field: 'shop_ref' } }, { tenantKey: 'shop_ref' }));
  t.throws(() => sequelize.define('Bad', { a: DataTypes.STRING }, { tenantKey: 7 as never }), {
    message: /tenantKey must be a non-empty string, got 7/,
  });
});

test('a tenantKey added by an association defined right after is accepted, without a word', async (t) => {
  const notices: string[] = [];
  const sequelize = instance(notices);
  const Store = sequelize.define('Store', { id: { type: DataTypes.BIGINT, primaryKey: true } }, { tenantKey: 'id' });
  const Shelf = sequelize.define('Shelf', { label: DataTypes.STRING }, { tenantKey: 'store_id' });
  Shelf.belongsTo(Store, { foreignKey: 'store_id' });
  await tick();
  t.deepEqual(
    notices.filter((n) => n.includes('tenantKey')),
    [],
  );
});

test('a tenantKey that still names nothing at the end of the tick is said, with the attributes; its queries fail naming them', async (t) => {
  const notices: string[] = [];
  const sequelize = instance(notices);
  const Broken = sequelize.define('Broken', { name: DataTypes.STRING }, { tenantKey: 'shop_id' });
  t.deepEqual(notices, []);
  await tick();
  t.deepEqual(
    notices.filter((n) => n.includes('tenantKey')),
    [
      "Broken: tenantKey 'shop_id' names no attribute or column (attributes: id, name, createdAt, updatedAt): declare it, or define the association that adds it (e.g. belongsTo(Store, { foreignKey: 'shop_id' })); its queries fail until then",
    ],
  );
  const err = await t.throwsAsync(() => withTenant(1, () => Broken.findAll()), { instanceOf: MultitenantError });
  t.regex(
    err?.message ?? '',
    /^Broken: tenantKey 'shop_id' names no attribute or column of this model \(attributes: id, name, createdAt, updatedAt\)/,
  );
});

test('a misspelt tenantKey of a model defined before multitenant() fails multitenant(), which installs nothing', async (t) => {
  const sequelize = new Sequelize('postgres://nobody@127.0.0.1:1/none', { logging: false });
  const Product = sequelize.define('Product', { store_id: DataTypes.INTEGER, name: DataTypes.STRING }, { tenantKey: 'stor_id' });
  const err = t.throws(() => multitenant(sequelize), { instanceOf: MultitenantError });
  t.regex(
    err?.message ?? '',
    /^Product\.define: tenantKey 'stor_id' names no attribute or column of this model — did you mean 'store_id'\?/,
  );
  // nothing installed: a second model with a bad key is not refused at define
  t.notThrows(() => sequelize.define('Other', { store_id: DataTypes.INTEGER }, { tenantKey: 'stor_id' }));
  t.true(sequelize.isDefined('Product'));
  t.is((Product as unknown as { options: { hooks: Record<string, unknown[]> } }).options.hooks.beforeFind, undefined);
});

// The context tests, run once per backend: AsyncLocalStorage (default), a cls-hooked namespace given
// to multitenant(), and the namespace of Sequelize.useCLS().
import { EventEmitter } from 'node:events';
import { setImmediate as immediate, setTimeout as sleep } from 'node:timers/promises';
import type { TestFn } from 'ava';
import type { Transaction } from 'sequelize';
import {
  getCurrentTenant,
  getCurrentTenantId,
  InvalidTenantError,
  MultitenantError,
  setCurrentTenant,
  unsetCurrentTenant,
  withoutTenant,
  withTenant,
  withTenantContext,
} from '../../src/index';
import { type Fixture, ORG_A } from './fixture';

export function contextSuite(test: TestFn<Fixture>, expectedBackend: RegExp): void {
  test.serial('the expected context backend holds the tenant', async (t) => {
    const { contextBackendName } = await import('../../src/context');
    t.regex(contextBackendName(), expectedBackend);
  });

  test.serial('set / get / unset', async (t) => {
    await withoutTenant(async () => {
      t.is(getCurrentTenant(), undefined);
      setCurrentTenant(7);
      t.is(getCurrentTenant(), 7);
      t.is(getCurrentTenantId(), 7);
      await sleep(1);
      t.is(getCurrentTenantId(), 7);
      unsetCurrentTenant();
      t.is(getCurrentTenant(), undefined);
      t.is(getCurrentTenantId(), undefined);
    });
  });

  test.serial('setCurrentTenant outside any unit of work refuses (it would outlive it); unset is a no-op there', async (t) => {
    await new Promise<void>((resolve) => {
      // a fresh async context: no request, job or block around it
      setImmediate(() => {
        t.throws(() => setCurrentTenant(1), { instanceOf: MultitenantError, message: /no unit of work to set the tenant in/ });
        t.notThrows(() => unsetCurrentTenant());
        t.is(getCurrentTenantId(), undefined);
        resolve();
      });
    });
  });

  test.serial('withTenantContext: what setCurrentTenant sets inside ends with it; concurrent ones never see each other', async (t) => {
    const { Product } = t.context;
    await t.context.reset();
    const job = (tenant: number, wait: number) =>
      withTenantContext(async () => {
        const before = getCurrentTenantId();
        await sleep(wait);
        setCurrentTenant(tenant);
        await sleep(5 - wait);
        const rows = await Product.findAll();
        return [before, getCurrentTenantId(), [...new Set(rows.map((r) => r.get('store_id')))]];
      });
    t.deepEqual(await Promise.all([job(1, 1), job(2, 3), job(1, 0)]), [
      [undefined, 1, [1]],
      [undefined, 2, [2]],
      [undefined, 1, [1]],
    ]);
    t.is(getCurrentTenantId(), undefined);
    // set inside withTenant(1) changes that block only
    await withTenant(3, async () => {
      await withTenant(1, async () => {
        setCurrentTenant(2);
        await sleep(1);
        t.is(getCurrentTenantId(), 2);
      });
      t.is(getCurrentTenantId(), 3);
    });
  });

  test.serial('withTenant returns the block value, restores the previous tenant, also when the block throws', async (t) => {
    t.is(
      withTenant(1, () => 'sync value'),
      'sync value',
    );
    await withTenant(1, async () => {
      t.is(await withTenant(2, async () => getCurrentTenantId()), 2);
      t.is(getCurrentTenantId(), 1);
      await t.throwsAsync(() =>
        withTenant(3, async () => {
          await sleep(1);
          throw new Error('boom');
        }),
      );
      t.is(getCurrentTenantId(), 1);
      t.throws(() =>
        withTenant(4, () => {
          throw new Error('sync boom');
        }),
      );
      t.is(getCurrentTenantId(), 1);
    });
    t.is(getCurrentTenant(), undefined);
  });

  test.serial('nested withTenant and withoutTenant', async (t) => {
    const seen: unknown[] = [];
    await withTenant(1, async () => {
      seen.push(getCurrentTenantId());
      await withTenant([2, 3], async () => {
        seen.push(getCurrentTenantId());
        await withoutTenant(async () => {
          seen.push(getCurrentTenantId());
          await withTenant(4, async () => seen.push(getCurrentTenantId()));
        });
        seen.push(getCurrentTenantId());
      });
      seen.push(getCurrentTenantId());
    });
    t.deepEqual(seen, [1, [2, 3], undefined, 4, [2, 3], 1]);
  });

  test.serial('a tenant as an instance, number, string, bigint, UUID, or several', async (t) => {
    const { Store, Org } = t.context;
    const store = await withoutTenant(() => Store.findByPk(2));
    const org = await withoutTenant(() => Org.findByPk(ORG_A));
    t.is(withTenant(store as never, () => getCurrentTenant()) as unknown, store);
    t.is(
      withTenant(store as never, () => getCurrentTenantId()),
      2,
    );
    t.is(
      withTenant(org as never, () => getCurrentTenantId()),
      ORG_A,
    );
    t.is(
      withTenant('abc', () => getCurrentTenantId()),
      'abc',
    );
    t.is(
      withTenant(9007199254740993n, () => getCurrentTenantId()),
      9007199254740993n,
    );
    t.deepEqual(
      withTenant([1, '2', 3n, store as never, 1], () => getCurrentTenantId()),
      [1, '2', 3n],
    );
  });

  test.serial('invalid tenants are refused where they are passed in', (t) => {
    const { Store } = t.context;
    const bad: unknown[] = [
      undefined,
      null,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      1.5,
      '',
      '  ',
      true,
      {},
      [],
      [[1]],
      [1, null],
      Store.build({ name: 'no id' }),
      new Date(),
      Symbol('x'),
      // an object that only looks like an instance
      { constructor: { rawAttributes: {}, primaryKeyAttributes: ['id'] }, id: 1 },
    ];
    for (const value of bad) {
      const err = t.throws(() => withTenant(value as never, () => 1), { instanceOf: InvalidTenantError }, String(value?.toString?.()));
      t.is(err?.operation, 'withTenant');
      t.throws(() => setCurrentTenant(value as never), { instanceOf: InvalidTenantError });
    }
    t.regex(t.throws(() => withTenant(Store.build({ name: 'x' }) as never, () => 1))?.message ?? '', /Store instance without its key 'id'/);
  });

  test.serial('the tenant survives await, timers, Promise.all and event emitters', async (t) => {
    await withTenant(5, async () => {
      await sleep(2);
      t.is(getCurrentTenantId(), 5);
      await immediate();
      t.is(getCurrentTenantId(), 5);
      const fromTimer = await new Promise((resolve) => setTimeout(() => resolve(getCurrentTenantId()), 2));
      t.is(fromTimer, 5);
      const all = await Promise.all(
        [1, 2, 3].map(async (i) => {
          await sleep(i);
          return getCurrentTenantId();
        }),
      );
      t.deepEqual(all, [5, 5, 5]);
      const emitter = new EventEmitter();
      const heard = new Promise((resolve) => emitter.once('go', () => resolve(getCurrentTenantId())));
      setTimeout(() => emitter.emit('go'), 1);
      t.is(await heard, 5);
    });
  });

  test.serial('setCurrentTenant in one async flow does not leak into a concurrent one', async (t) => {
    const a = withoutTenant(async () => {
      setCurrentTenant(1);
      await sleep(5);
      return getCurrentTenantId();
    });
    const b = withoutTenant(async () => {
      await sleep(1);
      const before = getCurrentTenantId();
      setCurrentTenant(2);
      await sleep(5);
      return [before, getCurrentTenantId()];
    });
    t.deepEqual(await Promise.all([a, b]), [1, [undefined, 2]]);
  });

  test.serial('managed and unmanaged transactions run scoped', async (t) => {
    const { sequelize, Product, rows } = t.context;
    await t.context.reset();
    await withTenant(1, () =>
      sequelize.transaction(async (transaction: Transaction) => {
        await Product.create({ name: 'in-tx' }, { transaction });
        t.is(await Product.count({ transaction }), 3);
        t.is(getCurrentTenantId(), 1);
      }),
    );
    t.deepEqual(
      (await rows('products')).filter((r) => r.name === 'in-tx').map((r) => r.store_id),
      [1],
    );
    await withTenant(2, async () => {
      const transaction = await sequelize.transaction();
      await Product.update({ price: 0 }, { where: {}, transaction });
      t.is(await Product.count({ where: { price: 0 }, transaction }), 3);
      await transaction.rollback();
    });
    t.is((await rows('products')).filter((r) => r.store_id === 2 && r.price === 0).length, 0);
  });

  test.serial('500 interleaved concurrent withTenant blocks each see only their own rows', async (t) => {
    const { Product, Purchase } = t.context;
    await t.context.reset();
    let wrong = 0;
    await Promise.all(
      Array.from({ length: 500 }, (_, i) => {
        const tenant = (i % 3) + 1;
        return withTenant(tenant, async () => {
          await sleep(i % 7);
          const products = await Product.findAll({ attributes: ['id', 'store_id'] });
          await immediate();
          const purchases = await Purchase.count();
          if (getCurrentTenantId() !== tenant) wrong++;
          wrong += products.filter((p) => p.get('store_id') !== tenant).length;
          const expected = [2, 3, 0][tenant - 1];
          if (products.length !== expected) wrong++;
          if (purchases !== [1, 2, 0][tenant - 1]) wrong++;
        });
      }),
    );
    t.is(wrong, 0);
  });
}

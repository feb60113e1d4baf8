// bindTenant: callbacks that run outside the async context they were registered in (old-style emitters,
// pools, timers created earlier) run with the tenant of the unit of work that bound them, never with
// the caller's.
import { EventEmitter } from 'node:events';
import test from 'ava';
import { bindTenant, getCurrentTenantId, setCurrentTenant, withoutTenant, withTenant, withTenantContext } from '../src/index';

test('a listener bound under a tenant runs with it, whoever emits, and after the block ended', async (t) => {
  const emitter = new EventEmitter(); // created outside any unit of work
  const seen: unknown[] = [];
  withTenant(1, () =>
    emitter.on(
      'tick',
      bindTenant(() => seen.push(getCurrentTenantId())),
    ),
  );
  emitter.emit('tick');
  withTenant(2, () => emitter.emit('tick'));
  await withoutTenant(async () => emitter.emit('tick'));
  t.deepEqual(seen, [1, 1, 1]);
});

test('bound outside any unit of work, it runs with no tenant — not the emitter’s', (t) => {
  const bound = bindTenant(() => getCurrentTenantId());
  t.is(
    withTenant(3, () => bound()),
    undefined,
  );
  // each call is a unit of work of its own: what one call sets, the next does not see
  const sets = bindTenant((id: number) => {
    const before = getCurrentTenantId();
    setCurrentTenant(id);
    return before;
  });
  t.deepEqual([sets(1), sets(2)], [undefined, undefined]);
});

test('it follows its unit of work as it is when it runs (setCurrentTenant later), and passes this and arguments', (t) => {
  const got = withTenantContext(() => {
    const bound = bindTenant(function (this: { k: number }, a: number) {
      return [this.k, a, getCurrentTenantId()];
    });
    setCurrentTenant(5);
    return bound.call({ k: 9 }, 7);
  });
  t.deepEqual(got, [9, 7, 5]);
  t.throws(() => bindTenant('x' as never), { instanceOf: TypeError });
});

test('a timer created in one request and fired in another keeps its own tenant', async (t) => {
  const fired: unknown[] = [];
  const queue: Array<() => void> = [];
  await withTenant('a', async () => queue.push(bindTenant(() => fired.push(getCurrentTenantId()))));
  await withTenant('b', async () => {
    for (const fn of queue) fn();
  });
  t.deepEqual(fired, ['a']);
});

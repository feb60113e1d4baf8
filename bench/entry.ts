// The cost of entering a tenant alone (no database): withTenant around a sync and an async function,
// against a bare AsyncLocalStorage.run and a bare async call. Run: npx tsx bench/entry.ts

import { AsyncLocalStorage } from 'node:async_hooks';
import { lib } from './library';

const { withTenant } = lib;

const als = new AsyncLocalStorage<object>();
const N = 1_000_000;
async function main() {
  for (let r = 0; r < 3; r++) {
    let t0 = process.cpuUsage();
    for (let i = 0; i < N; i++) withTenant((i % 3) + 1, () => i);
    let c = process.cpuUsage(t0);
    console.log('withTenant sync ns/op', ((c.user + c.system) * 1000) / N);
    t0 = process.cpuUsage();
    for (let i = 0; i < N; i++) als.run({ t: i }, () => i);
    c = process.cpuUsage(t0);
    console.log('als.run ns/op', ((c.user + c.system) * 1000) / N);
    t0 = process.cpuUsage();
    for (let i = 0; i < N / 10; i++) await withTenant((i % 3) + 1, async () => i);
    c = process.cpuUsage(t0);
    console.log('withTenant async ns/op', ((c.user + c.system) * 1000) / (N / 10));
    t0 = process.cpuUsage();
    for (let i = 0; i < N / 10; i++) await (async () => i)();
    c = process.cpuUsage(t0);
    console.log('plain async ns/op', ((c.user + c.system) * 1000) / (N / 10));
  }
}
main();

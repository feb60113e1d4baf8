// tenantMiddleware on Express 4 and 5, over real HTTP: the hostile cases of every host (host-suite.ts).
// The cases only Express has are in express-als.test.ts / express-cls.test.ts.
import anyTest, { type TestFn } from 'ava';
import { expressHost, expressVersions } from './helpers/express-suite';
import { type HostCtx, hostSuite } from './helpers/host-suite';

hostSuite(
  anyTest as TestFn<HostCtx>,
  expressVersions.map(([name, express]) => expressHost(name, express)),
);

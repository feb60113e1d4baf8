// The Express app: each request names its store in the X-Store header (a real app would take it from
// the session or the subdomain); the middleware resolves it once and every query below is scoped.
import express, { type NextFunction, type Request, type Response } from 'express';
import { col, ForeignKeyConstraintError, fn } from 'sequelize';
import {
  getCurrentTenantId,
  InvalidTenantError,
  MissingTenantError,
  MultitenantError,
  TenantMismatchError,
  tenantMiddleware,
  withoutTenant,
} from 'sequelize-multitenant';
import { Country, Product, Purchase, Store } from './models';

const storeIds = new Map<string, number>();
/** X-Store: acme → the store's id (looked up without a tenant, then cached). */
async function resolveStore(req: Request): Promise<number | undefined> {
  const slug = req.header('x-store');
  if (!slug) return undefined;
  const cached = storeIds.get(slug);
  if (cached !== undefined) return cached;
  const store = await withoutTenant(() => Store.findOne({ where: { slug } }));
  if (!store) return undefined;
  storeIds.set(slug, Number(store.id));
  return Number(store.id);
}

export function createApp() {
  storeIds.clear();
  const app = express();
  app.use(express.json());
  app.use(tenantMiddleware<Request>(resolveStore));

  app.get('/whoami', (_req, res) => {
    res.json({ store: getCurrentTenantId() ?? null });
  });
  app.get('/countries', async (_req, res) => {
    res.json(await withoutTenant(() => Country.findAll({ order: [['code', 'ASC']] })));
  });
  app.get('/products', async (_req, res) => {
    res.json(await Product.findAll({ include: [Purchase, Country], order: [['id', 'ASC']] }));
  });
  app.get('/products/:id', async (req, res) => {
    const product = await Product.findOne({ where: { id: req.params.id }, include: [Purchase] });
    if (!product) return void res.status(404).json({ error: 'not found' });
    res.json(product);
  });
  app.post('/products', async (req, res) => {
    res.status(201).json(await Product.create(req.body));
  });
  app.post('/products/:id/purchases', async (req, res) => {
    const product = await Product.findOne({ where: { id: req.params.id } });
    if (!product) return void res.status(404).json({ error: 'not found' });
    res.status(201).json(await Purchase.create({ productId: product.id, quantity: req.body.quantity ?? 1 }));
  });
  // No lookup first: the database's composite foreign key is what refuses another store's product.
  app.post('/purchases', async (req, res) => {
    res.status(201).json(await Purchase.create({ productId: req.body.productId, quantity: req.body.quantity ?? 1 }));
  });
  app.get('/stats', async (_req, res) => {
    const [products, units, top] = await Promise.all([
      Product.count(),
      Purchase.sum('quantity'),
      Product.findAll({
        attributes: ['id', 'name', [fn('COUNT', col('Purchases.id')), 'purchases']],
        include: [{ model: Purchase, attributes: [] }],
        group: ['Product.id', 'Product.store_id'],
        order: [['id', 'ASC']],
      }),
    ]);
    res.json({ products, units: units ?? 0, top });
  });

  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof ForeignKeyConstraintError) {
      return void res
        .status(409)
        .json({ error: err.name, message: `no such ${err.table?.startsWith('purchases') ? 'product' : 'row'} in this store` });
    }
    const status =
      err instanceof MissingTenantError ? 401 : err instanceof TenantMismatchError ? 409 : err instanceof InvalidTenantError ? 400 : 500;
    res.status(status).json({ error: err.name, message: err.message, ...(err instanceof MultitenantError ? {} : { stack: undefined }) });
  });
  return app;
}

// `npm run example`: seeds two stores, makes requests as each, prints what each tenant sees and the SQL
// that was sent, then exits. DATABASE_URL=postgres://... runs it on PostgreSQL or a Citus coordinator.
import { startExample } from './setup';

export interface DemoStep {
  as: string | null;
  method: string;
  path: string;
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies
  body: any;
  sql: string[];
}

const STEPS: Array<{ as: string | null; method: 'GET' | 'POST'; path: string; body?: unknown; note: string }> = [
  { as: 'acme', method: 'GET', path: '/products', note: "acme's catalogue (ids 1, 2)" },
  { as: 'globex', method: 'GET', path: '/products', note: "globex's catalogue (ids 1, 2, 3: the same ids, other rows)" },
  { as: 'acme', method: 'GET', path: '/products/3', note: 'id 3 exists only at globex: acme gets 404' },
  { as: 'acme', method: 'POST', path: '/products', body: { name: 'Tornado kit', price: 40 }, note: 'store_id is filled in' },
  { as: 'acme', method: 'POST', path: '/products', body: { name: 'Heist', price: 1, storeId: 2 }, note: 'writing into globex is refused' },
  { as: 'globex', method: 'POST', path: '/products/1/purchases', body: { quantity: 3 }, note: "a purchase of globex's product 1" },
  {
    as: 'acme',
    method: 'POST',
    path: '/purchases',
    body: { productId: '3' },
    note: "product 3 is globex's: the composite foreign key (store_id, product_id) refuses it",
  },
  { as: 'acme', method: 'GET', path: '/stats', note: 'counts and sums, scoped' },
  { as: 'globex', method: 'GET', path: '/stats', note: 'counts and sums, scoped' },
  { as: null, method: 'GET', path: '/products', note: 'no store: strict mode refuses' },
  { as: null, method: 'GET', path: '/countries', note: 'a global table needs no store' },
];

function summary(body: unknown): string {
  if (Array.isArray(body))
    return `${body.length} rows: ${body.map((r) => `${r.name ?? r.code}${r.storeId ? ` (store ${r.storeId})` : ''}`).join(', ')}`;
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (b.error) return b.message ? `${b.error}: ${b.message}` : String(b.error);
    return JSON.stringify(b);
  }
  return String(body);
}

/** The SQL as a reader needs it: the select list and RETURNING list folded, the schema prefix dropped — the tenant predicates stay. */
function short(sql: string): string {
  return sql
    .replace(/"store_example"\./g, '')
    .replace(/^SELECT (?!count|sum)[\s\S]*? FROM /, 'SELECT … FROM ')
    .replace(/ RETURNING [^;]*/, ' RETURNING …');
}

/** The foreign keys of the example's schema, as `purchases (store_id, product_id) → products (store_id, id)`. */
async function foreignKeys(example: Awaited<ReturnType<typeof startExample>>): Promise<string[]> {
  const [rows] = await example.sequelize.query(
    `SELECT conrelid::regclass::text AS child, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE contype = 'f' AND connamespace = 'store_example'::regnamespace ORDER BY 1, 2`,
  );
  example.sql.length = 0;
  return (rows as Array<{ child: string; def: string }>).map(({ child, def }) => {
    const [, cols, parent, parentCols] = /FOREIGN KEY \(([^)]*)\) REFERENCES ([^(]+)\(([^)]*)\)/.exec(def) ?? [];
    return `${child.replace('store_example.', '')} (${cols}) → ${parent?.replace('store_example.', '')} (${parentCols})`;
  });
}

export async function runDemo(options: { url?: string; print?: (line: string) => void } = {}): Promise<DemoStep[]> {
  const print = options.print ?? (() => undefined);
  const example = await startExample({ url: options.url });
  const steps: DemoStep[] = [];
  try {
    print(`sequelize-multitenant store example — database: ${example.database.description}`);
    print(`foreign keys made by sync(): ${(await foreignKeys(example)).join('; ')}\n`);
    for (const step of STEPS) {
      const start = example.sql.length;
      const res = await fetch(`${example.baseUrl}${step.path}`, {
        method: step.method,
        headers: { ...(step.as ? { 'x-store': step.as } : {}), ...(step.body ? { 'content-type': 'application/json' } : {}) },
        body: step.body ? JSON.stringify(step.body) : undefined,
      });
      const body = await res.json();
      const sql = example.sql
        .slice(start)
        .filter((s) => !/^SELECT .* FROM "store_example"."stores" AS "Store" WHERE "Store"."slug"/.test(s));
      steps.push({ as: step.as, method: step.method, path: step.path, status: res.status, body, sql });
      print(
        `== ${step.as ?? '(no store)'}: ${step.method} ${step.path}${step.body ? ` ${JSON.stringify(step.body)}` : ''}   — ${step.note}`,
      );
      print(`   ${res.status} ${summary(body)}`);
      for (const s of sql) print(`   SQL ${short(s)}`);
      print('');
    }
  } finally {
    await example.close();
  }
  return steps;
}

if (require.main === module) {
  runDemo({ print: (line) => process.stdout.write(`${line}\n`) }).then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}

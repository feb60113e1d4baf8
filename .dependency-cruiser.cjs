// The import rules of src/ (docs/architecture.md): imports run one way, down. `npm run lint` runs this
// with dependency-cruiser; type-only imports count (tsPreCompilationDeps), since a type-only circle still
// ties two rooms together.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-import-cycle',
      severity: 'error',
      comment: 'An import cycle in src/ (type-only imports included): move the shared piece down into a room both can import.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'plugin-is-wired-not-imported',
      severity: 'error',
      comment:
        'plugin.ts wires the rooms together and hands them what they need; only the entry (index.ts) and the host integrations that call multitenant() import it. Put what a room needs from it in a lower room (state.ts).',
      from: { path: '^src/', pathNot: ['^src/index\\.ts$', '^src/hosts/'] },
      to: { path: '^src/plugin\\.ts$' },
    },
    {
      name: 'core-imports-no-room',
      severity: 'error',
      comment:
        'The files at the top of src/ (state, errors, tenant, models, context, notice, settings, statements) are the core every room builds on: they import no room. index.ts and plugin.ts are the exceptions: they assemble the rooms.',
      from: { path: '^src/[^/]+\\.ts$', pathNot: ['^src/index\\.ts$', '^src/plugin\\.ts$'] },
      to: { path: '^src/[^/]+/' },
    },
    {
      name: 'schema-is-shared-by-postgres-and-citus',
      severity: 'error',
      comment:
        'schema/ holds what PostgreSQL and Citus share; the Citus steps of a sync are handed in by plugin.ts (schema/steps.ts), so schema/ imports no room above it.',
      from: { path: '^src/schema/' },
      to: { path: '^src/(citus|rls|scope|audit|verify|hosts|doctor|lifecycle|cli)/' },
    },
    {
      name: 'lines-of-defense-stay-apart',
      severity: 'error',
      comment: 'The first line (scope/) and the install-time proofs (verify/) are independent of the database layers and of each other.',
      from: { path: '^src/(scope|verify)/' },
      to: { path: '^src/(schema|citus|rls|audit|hosts|doctor|lifecycle|cli)/' },
    },
    {
      name: 'hosts-and-clis-are-leaves',
      severity: 'error',
      comment:
        'hosts/ (subpath exports) and cli/ (the command line) sit on top: only the entry imports a host, nothing imports the CLI, and only the CLI imports the doctor.',
      from: { path: '^src/', pathNot: ['^src/index\\.ts$', '^src/hosts/', '^src/doctor/', '^src/cli/'] },
      to: { path: '^src/(hosts|doctor|cli)/' },
    },
    {
      name: 'nothing-imports-the-cli',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/cli/'] },
      to: { path: '^src/cli/' },
    },
    {
      name: 'lifecycle-works-on-whole-tenants',
      severity: 'error',
      comment:
        'lifecycle/ (export, delete, import, copy of one tenant) uses the schema layer and the context from above: only the entry and the CLI import it, and it imports no host, CLI or plugin.ts.',
      from: { path: '^src/', pathNot: ['^src/index\\.ts$', '^src/cli/', '^src/lifecycle/'] },
      to: { path: '^src/lifecycle/' },
    },
    {
      name: 'lifecycle-imports-below-it',
      severity: 'error',
      from: { path: '^src/lifecycle/' },
      to: { path: '^src/(hosts|doctor|cli|plugin\\.ts$)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};

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
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};

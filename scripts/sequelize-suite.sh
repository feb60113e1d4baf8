#!/usr/bin/env bash
# Runs Sequelize v6's own PostgreSQL integration suite twice: as is, then with sequelize-multitenant installed on
# every Sequelize instance it creates (scripts/sequelize-suite-preload.cjs). The suite defines no tenantKey model,
# so every test should behave the same: a test that fails only with the plugin is an incompatibility.
#
# Usage: scripts/sequelize-suite.sh <sequelize-v6-checkout> [mocha spec ...]
#   default spec: test/integration/**/*.test.[tj]s (as its `test-integration-postgres` script), relative to the checkout
# Needs: the checkout's dev dependencies installed (npm install), this project's dist/ built (npm run build),
#   psql, and PostgreSQL at SEQ_PG_HOST:SEQ_PG_PORT (default 127.0.0.1:5432, user postgres). The database
#   SEQ_PG_DB (default sequelize_test) is dropped and created afresh before each run.
# Output: counts, timings and the tests failing only with the plugin; mocha's raw output in $SEQ_SUITE_OUT (a temp dir).
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 <sequelize-v6-checkout> [mocha spec ...]" >&2; exit 2; }
checkout=$(cd "$1" && pwd -P); shift
specs=("$@"); [ ${#specs[@]} -gt 0 ] || specs=('test/integration/**/*.test.[tj]s')
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
out=${SEQ_SUITE_OUT:-$(mktemp -d /tmp/sequelize-suite.XXXXXX)}; mkdir -p "$out"

# The env the suite's test/config/config.js reads.
export DIALECT=postgres SEQ_PG_HOST=${SEQ_PG_HOST:-127.0.0.1} SEQ_PG_PORT=${SEQ_PG_PORT:-5432} \
  SEQ_PG_USER=${SEQ_PG_USER:-postgres} SEQ_PG_PW=${SEQ_PG_PW:-postgres} SEQ_PG_DB=${SEQ_PG_DB:-sequelize_test}

[ -f "$project/dist/index.js" ] || { echo "no $project/dist: run npm run build first" >&2; exit 2; }
# The suite loads the checkout's built lib/ (require('sequelize') is the package's self-reference); its `npm test`
# builds it in `prepare`, which is the only build done here, and only when lib/ is missing.
[ -f "$checkout/lib/index.js" ] || (cd "$checkout" && node build.js)

# A snapshot of dist/ beside a node_modules/sequelize symlink to the checkout: the plugin's require('sequelize')
# then loads the very module the suite loads (not this project's node_modules copy), and a rebuild of dist/
# during the runs changes nothing.
rm -rf "$out/plugin"; mkdir -p "$out/plugin/node_modules"
cp -R "$project/dist" "$out/plugin/dist"
ln -s "$checkout" "$out/plugin/node_modules/sequelize"
export SEQ_SUITE_CHECKOUT=$checkout SEQ_SUITE_PLUGIN=$out/plugin/dist

pg() { PGPASSWORD=$SEQ_PG_PW psql -qX -h "$SEQ_PG_HOST" -p "$SEQ_PG_PORT" -U "$SEQ_PG_USER" -v ON_ERROR_STOP=1 "$@"; }

# run LABEL [mocha args...]: fresh database, then mocha as the checkout's `yarn mocha` with newline-delimited JSON.
run() {
  local label=$1; shift
  pg -d postgres -c "DROP DATABASE IF EXISTS \"$SEQ_PG_DB\" WITH (FORCE)" -c "CREATE DATABASE \"$SEQ_PG_DB\""
  # Extensions some tests need (hstore, citext, PostGIS types, gist/trgm operator classes), where the server has them.
  pg -d "$SEQ_PG_DB" -c "DO \$\$ DECLARE e text; BEGIN FOR e IN SELECT name FROM pg_available_extensions
    WHERE name IN ('hstore', 'citext', 'postgis', 'btree_gist', 'pg_trgm') LOOP
    EXECUTE format('CREATE EXTENSION IF NOT EXISTS %I', e); END LOOP; END \$\$"
  local start=$SECONDS
  # mocha exits with the number of failures: that is not an error of this script.
  (cd "$checkout" && node_modules/.bin/mocha -r ./test/registerEsbuild "$@" --reporter json-stream "${specs[@]}") \
    >"$out/$label.jsonl" 2>"$out/$label.stderr" || true
  echo "$((SECONDS - start))" >"$out/$label.seconds"
}

echo "Sequelize checkout: $checkout; output: $out" >&2
echo "specs: ${specs[*]}" >&2
run without
run with -r "$project/scripts/sequelize-suite-preload.cjs"

# Compare the two runs (tests keyed by file and full title).
node - "$out" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const dir = process.argv[2];
function load(label) {
  const r = { pass: new Set(), fail: new Map(), end: null, total: null };
  for (const line of fs.readFileSync(path.join(dir, `${label}.jsonl`), 'utf8').split('\n')) {
    if (!line.startsWith('["')) continue; // the tests' own console output
    let ev; try { ev = JSON.parse(line); } catch { continue; }
    const [type, t] = ev;
    const key = `${path.relative(process.env.SEQ_SUITE_CHECKOUT, t.file || '?')}: ${t.fullTitle}`;
    if (type === 'start') r.total = t.total;
    else if (type === 'pass') r.pass.add(key);
    else if (type === 'fail') r.fail.set(key, t.err || t.stack || '');
    else if (type === 'end') r.end = t;
  }
  const s = r.end || {};
  const secs = fs.readFileSync(path.join(dir, `${label}.seconds`), 'utf8').trim();
  console.log(`${label.padEnd(7)} plugin: ${s.passes ?? r.pass.size} passing, ${s.failures ?? r.fail.size} failing, ` +
    `${s.pending ?? '?'} pending (of ${r.total ?? '?'} tests) in ${secs}s`);
  if (!r.end) { // a crash (of the preload, say): show how it ended
    const err = fs.readFileSync(path.join(dir, `${label}.stderr`), 'utf8').trim().split('\n').slice(-8);
    console.log(`  mocha did not finish; the end of ${label}.stderr:\n    ${err.join('\n    ')}`);
  }
  return r;
}
const without = load('without');
const withP = load('with');
const only = [...withP.fail].filter(([k]) => !without.fail.has(k));
const fixed = [...without.fail.keys()].filter((k) => !withP.fail.has(k) && withP.pass.has(k));
const notRun = [...without.pass].filter((k) => !withP.pass.has(k) && !withP.fail.has(k));
console.log(`\n${only.length} failing only with the plugin${only.length ? ':' : ''}`);
for (const [k, err] of only) {
  console.log(`- ${k}\n    ${String(err).split('\n').slice(0, 3).join('\n    ')}`);
}
console.log(`${fixed.length} failing only without the plugin${fixed.length ? ':\n- ' + fixed.join('\n- ') : ''}`);
console.log(`${notRun.length} passing without the plugin and not run with it${notRun.length ? ':\n- ' + notRun.slice(0, 50).join('\n- ') : ''}`);
EOF
grep -h 'sequelize-multitenant installed' "$out/with.stderr" || true

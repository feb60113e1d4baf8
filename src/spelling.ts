// The name a misspelt one most likely meant: for a `tenantKey` that names no attribute, and for an option
// name no function takes.

/** Damerau-Levenshtein distance (one transposition counts one), enough for the short names keys have. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[];
      const up = d[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/**
 * Of `names`, the one `wanted` most likely meant: the same name but for case and underscores (`storeID`,
 * `storeid` for `store_id`; `transfermode` for `transferMode`), or, for names of 4+ letters, one typo away
 * (`storId`, `stirct`).
 * @example nearestName(['strict', 'rls'], 'stirct') // 'strict'
 */
export function nearestName(names: Iterable<string>, wanted: string): string | undefined {
  const fold = (name: string) => name.toLowerCase().replace(/_/g, '');
  const all = [...names];
  for (const name of all) if (fold(name) === fold(wanted)) return name;
  if (wanted.length < 4) return undefined;
  for (const name of all) if (distance(fold(name), fold(wanted)) <= 1) return name;
  return undefined;
}

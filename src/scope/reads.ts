import type { PluginState } from '../plugin';
import { activeScope, scopedWhere } from './scope';
import type { QueryInterfaceInternals } from './writes';

/**
 * The root WHERE of every read: `select` (findAll, findOne, findByPk, findAndCountAll, reload,
 * association getters) and `rawSelect` (count, max, min, sum, aggregate). Both receive options whose
 * `where` already uses column names.
 */
export function patchReads(qi: QueryInterfaceInternals, state: PluginState): void {
  const select = qi.select;
  qi.select = async function scopedSelect(model, tableName, options) {
    const scope = activeScope(state, model, 'find', 'read');
    if (!scope) return select.call(this, model, tableName, options);
    return select.call(this, model, tableName, { ...options, where: scopedWhere(options?.where, scope) });
  };

  const rawSelect = qi.rawSelect;
  qi.rawSelect = async function scopedRawSelect(tableName, options, attributeSelector, model) {
    const scope = activeScope(state, model, 'aggregate', 'read');
    if (!scope) return rawSelect.call(this, tableName, options, attributeSelector, model);
    return rawSelect.call(this, tableName, { ...options, where: scopedWhere(options?.where, scope) }, attributeSelector, model);
  };
}

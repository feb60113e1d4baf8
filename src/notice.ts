import type { Sequelize } from 'sequelize';
import { type NoticeHandler, stateOf } from './state';

const defaultNotice = (message: string) => console.warn(`[sequelize-multitenant] ${message}`);

const said = new WeakMap<Sequelize, Set<string>>();

/**
 * Sends a notice, once per Sequelize instance and message (a notice of the schema or the setup says the
 * same on every sync: it is said the first time); `repeat` for reports of single events (the auditor's).
 * `'info'` notices (a Citus step skipped on plain PostgreSQL: expected there) reach only a handler the
 * application gave; the default handler prints warnings only.
 */
export function notify(
  sequelize: Sequelize | undefined,
  message: string,
  handler?: NoticeHandler,
  level: 'warn' | 'info' = 'warn',
  repeat = false,
): void {
  const chosen = handler !== undefined ? handler : sequelize ? stateOf(sequelize)?.options.notice : undefined;
  if (chosen === false) return;
  if (!chosen && level === 'info') return;
  if (sequelize && !repeat) {
    let seen = said.get(sequelize);
    if (!seen) {
      seen = new Set();
      said.set(sequelize, seen);
    }
    if (seen.has(message)) return;
    seen.add(message);
  }
  (chosen ?? defaultNotice)(message);
}

import type { Sequelize } from 'sequelize';
import { stateOf } from './plugin';

/** Where one-line notices and warnings go: the `notice` option, by default `console.warn`. */
export type NoticeHandler = ((message: string) => void) | false;

const defaultNotice = (message: string) => console.warn(`[sequelize-multitenant] ${message}`);

/**
 * Sends a notice. `'info'` notices (a Citus step skipped on plain PostgreSQL: expected there) reach only
 * a handler the application gave; the default handler prints warnings only.
 */
export function notify(sequelize: Sequelize | undefined, message: string, handler?: NoticeHandler, level: 'warn' | 'info' = 'warn'): void {
  const chosen = handler !== undefined ? handler : sequelize ? stateOf(sequelize)?.options.notice : undefined;
  if (chosen === false) return;
  if (!chosen && level === 'info') return;
  (chosen ?? defaultNotice)(message);
}

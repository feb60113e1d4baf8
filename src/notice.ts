import type { Sequelize } from 'sequelize';
import { stateOf } from './plugin';

/** Where one-line notices and warnings go: the `notice` option, by default `console.warn`. */
export type NoticeHandler = ((message: string) => void) | false;

const defaultNotice = (message: string) => console.warn(`[sequelize-multitenant] ${message}`);

export function notify(sequelize: Sequelize | undefined, message: string, handler?: NoticeHandler): void {
  const chosen = handler !== undefined ? handler : sequelize ? stateOf(sequelize)?.options.notice : undefined;
  if (chosen === false) return;
  (chosen ?? defaultNotice)(message);
}

// One validator for the options every public function takes: a name no function takes (`transfermode`,
// `topp`, `requird`) is refused, saying which one it meant and listing the valid ones; a value of the wrong
// type is refused, saying what it must be — before anything is sent, installed or registered.
import { MultitenantError } from './errors';
import { nearestName } from './spelling';

/** What one option's value must be (`undefined` is always allowed: every option is optional here). */
export type OptionCheck =
  | 'boolean'
  | 'string'
  | 'function'
  | 'object'
  | 'positive integer'
  | 'string array'
  | 'notice'
  | 'logging'
  | 'table'
  | 'array'
  | 'signal'
  | { readonly oneOf: readonly (string | number | boolean)[] };

/** The options a function takes, each with its check. */
export type OptionSpec = Readonly<Record<string, OptionCheck>>;

/** Options every `transaction` / `notice` taking helper shares. */
export const TRANSACTION_AND_NOTICE: OptionSpec = { transaction: 'object', notice: 'notice' };

function describe(check: OptionCheck): string {
  if (typeof check === 'object') return `one of ${check.oneOf.map((v) => (typeof v === 'string' ? `'${v}'` : String(v))).join(', ')}`;
  return {
    boolean: 'a boolean',
    string: 'a string',
    function: 'a function',
    object: 'an object',
    'positive integer': 'a positive integer',
    'string array': 'an array of strings',
    notice: 'a function or false',
    logging: 'a function or a boolean',
    table: "a table name ('products' or { tableName, schema })",
    array: 'an array',
    signal: 'an AbortSignal',
  }[check];
}

function fits(check: OptionCheck, value: unknown): boolean {
  if (typeof check === 'object') return check.oneOf.includes(value as string);
  switch (check) {
    case 'boolean':
    case 'string':
    case 'function':
      return typeof value === check;
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'positive integer':
      return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
    case 'string array':
      return Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string' && v !== '');
    case 'notice':
      return value === false || typeof value === 'function';
    case 'logging':
      return typeof value === 'boolean' || typeof value === 'function';
    case 'array':
      return Array.isArray(value);
    case 'signal':
      return value instanceof AbortSignal;
    case 'table':
      return (
        (typeof value === 'string' && value !== '') ||
        (typeof value === 'object' && value !== null && typeof (value as { tableName?: unknown }).tableName === 'string')
      );
  }
}

const show = (value: unknown): string => {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
};

/** Beyond the spec: options that must be given, and names taken and checked elsewhere (Fastify's `prefix`). */
export interface OptionRules {
  readonly required?: readonly string[];
  readonly allowed?: readonly string[];
}

/**
 * Refuses `options` of `operation` that name an option `spec` does not have, or give one a value of the
 * wrong type, or leave out a `required` one, with a `MultitenantError` that says what it meant and what the
 * options are; `unchanged` says what did not happen (`nothing was sent`). `undefined` options are none;
 * anything but a plain object is refused.
 * @example checkOptions('isolateTenant', { transfermode: 'block_writes' }, { transferMode: { oneOf: ['auto'] } }, 'nothing was sent')
 */
export function checkOptions(operation: string, options: unknown, spec: OptionSpec, unchanged: string, rules: OptionRules = {}): void {
  const { required = [], allowed = [] } = rules;
  if (options === undefined && required.length === 0) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new MultitenantError(`options must be an object, got ${show(options)}; ${unchanged}`, { operation });
  }
  const names = Object.keys(spec);
  const unknown = Object.keys(options).filter((k) => !Object.hasOwn(spec, k) && !allowed.includes(k));
  if (unknown.length > 0) {
    const said = unknown.map((k) => {
      const near = nearestName(names, k);
      return near ? `'${k}' (did you mean '${near}'?)` : `'${k}'`;
    });
    throw new MultitenantError(
      `unknown option${unknown.length > 1 ? 's' : ''} ${said.join(', ')}: the options are ${names.join(', ')}; ${unchanged}`,
      { operation },
    );
  }
  const missing = required.filter((name) => (options as Record<string, unknown>)[name] === undefined);
  if (missing.length > 0) {
    throw new MultitenantError(`option${missing.length > 1 ? 's' : ''} ${missing.join(', ')} must be given; ${unchanged}`, { operation });
  }
  for (const [name, check] of Object.entries(spec)) {
    const value = (options as Record<string, unknown>)[name];
    if (value === undefined || fits(check, value)) continue;
    throw new MultitenantError(`option ${name} must be ${describe(check)}, got ${show(value)}; ${unchanged}`, { operation });
  }
}

// The static methods of Sequelize's base Model that the library wraps (sync, bulkCreate, upsert,
// findOrCreate, the association factories), wrapped wherever a model finds them. A class between an
// application's model and the base Model may hold copies of its own: sequelize-typescript's Model copies
// every static method of Model onto itself when it is loaded (to refuse a model that was not initialised,
// and to infer include aliases), so its models call the base's methods as they were then — past any
// wrapper added later, when multitenant() runs. Each wrapper is therefore also put on every class of a
// model's chain that has its own copy, as the model is defined; and a call that passes through the same
// wrapper twice (a copy made after the base was wrapped) applies it once.

/** A static method of a model class. */
export type StaticMethod = (this: object, ...args: never[]) => unknown;

interface Wrapping {
  readonly key: string;
  /** The library's logic around `original` (the function it replaces on one class). */
  readonly wrap: (original: StaticMethod) => StaticMethod;
}

/**
 * Per base Model: the wrappings in the order they were made, and the classes of model chains seen so far
 * that hold copies of wrapped methods (sequelize-typescript's Model; not the models themselves, which
 * would keep every Sequelize instance alive).
 */
const wrappings = new WeakMap<object, Wrapping[]>();
const chains = new WeakMap<object, Set<object>>();
/** Per class: the wrappings already put on it. */
const applied = new WeakMap<object, Set<Wrapping>>();
/** The wrappings being applied right now (their synchronous part), with the model each is applied to. */
const inProgress = new Map<Wrapping, Set<object>>();

function put(target: Record<string, unknown>, wrapping: Wrapping): void {
  const done = applied.get(target) ?? new Set<Wrapping>();
  if (done.has(wrapping)) return;
  done.add(wrapping);
  applied.set(target, done);
  const original = target[wrapping.key] as StaticMethod;
  const logic = wrapping.wrap(original);
  target[wrapping.key] = function wrapped(this: object, ...args: never[]) {
    const models = inProgress.get(wrapping) ?? new Set<object>();
    // an outer copy of this wrapper is applying it to this model already: go on to what it wraps
    if (models.has(this)) return original.apply(this, args);
    models.add(this);
    inProgress.set(wrapping, models);
    try {
      return logic.apply(this, args);
    } finally {
      models.delete(this);
      if (models.size === 0) inProgress.delete(wrapping);
    }
  };
}

/**
 * Wraps a static method of the base Model, now and on every class of a model chain that holds its own
 * copy (those seen so far, and those of models defined later: `wrapChain`). `wrap` receives the function
 * it replaces on each class and returns the replacement; the library's logic must call that function in
 * its synchronous part (before any `await`), as every wrapper here does.
 */
export function wrapStatic(base: object, key: string, wrap: (original: StaticMethod) => StaticMethod): void {
  const wrapping: Wrapping = { key, wrap };
  const list = wrappings.get(base) ?? [];
  list.push(wrapping);
  wrappings.set(base, list);
  put(base as Record<string, unknown>, wrapping);
  for (const c of chains.get(base) ?? []) if (Object.hasOwn(c, key)) put(c as Record<string, unknown>, wrapping);
}

/** A model was defined: every class from it up to the base Model that has its own copy of a wrapped method gets the wrapper. */
export function wrapChain(model: object, base: object): void {
  const seen = chains.get(base) ?? new Set<object>();
  chains.set(base, seen);
  const list = wrappings.get(base) ?? [];
  for (let c: object | null = model; c && c !== base && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    const copies = list.filter((w) => Object.hasOwn(c as object, w.key) && typeof (c as Record<string, unknown>)[w.key] === 'function');
    if (copies.length === 0) continue;
    if (c !== model) seen.add(c);
    for (const wrapping of copies) put(c as Record<string, unknown>, wrapping);
  }
}

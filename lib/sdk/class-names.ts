/**
 * Class names for libraries that name their errors after their class (`this.name = this.constructor.name`):
 * postgres.js and jose. Functions are bundled with `keep_names = false` (wrangler.toml), so minified classes
 * carry two-letter names; keeping every name costs a `defineProperty` per closure made at run time (esbuild's
 * `__name`), which measured a third of the CPU of a small request inside workerd. Naming the few classes whose
 * names are read (db-errors.ts tells PostgreSQL's answers by `name`; logs show error names) once, at load, keeps
 * both.
 */

/** Sets each class's `name` to its key, once. */
export function nameClasses(classes: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(classes)) {
    if (typeof value === "function" && value.name !== name) Object.defineProperty(value, "name", { value: name, configurable: true });
  }
}

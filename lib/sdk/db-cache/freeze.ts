/**
 * cached()'s rows are frozen on every path, from the cache or not, so code that changes them fails the same way in
 * development as where the cache serves (an entry's rows are shared by every request it answers).
 */

/** Freezes the rows and what they hold; not postgres.js's own objects the list points to, and not bytes (a typed array cannot be frozen). */
export function freezeRows<T extends readonly unknown[]>(rows: T): T {
  for (const row of rows) deepFreeze(row);
  return Object.freeze(rows);
}

function deepFreeze(value: unknown): void {
  if (!value || typeof value !== "object" || Object.isFrozen(value) || ArrayBuffer.isView(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}

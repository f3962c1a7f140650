/**
 * An error as a plain object for console.error. workerd's traces serialize an Error argument to its
 * message alone; a plain `{ name, message, stack }` keeps the stack, which the collector source-maps and
 * records (the platform recognises a logged object with these three fields as an error).
 */
export interface ErrorDetails {
  name: string;
  message: string;
  stack: string;
}

/** `{ name, message, stack }` of anything thrown. */
export function errorDetails(thrown: unknown): ErrorDetails {
  if (thrown instanceof Error)
    return { name: thrown.name, message: thrown.message, stack: thrown.stack ?? `${thrown.name}: ${thrown.message}` };
  const text = String(thrown);
  return { name: "NonError", message: text, stack: text };
}

/**
 * "The operator did something wrong": a setting, a missing tool, a busy port, a refused deploy. Commands print its
 * message alone (it says what happened and how to fix it); anything else is a bug and prints with its stack. As
 * Wrangler's `UserError`. Subclasses exist only where code tells them apart or they carry data.
 */
export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** True for an operator's mistake (print the message), false for a bug (print the stack). */
export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}

/** What a command prints for an error: the message of an operator's mistake, the stack of anything else. */
export function describeFailure(err: unknown): string {
  if (isUserError(err)) return err.message;
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/**
 * `err` as an operator's mistake, with its own message: for a failure the operator must fix that arrives as a
 * plain error (a folder they named cannot be written, a database they named does not answer).
 */
export function asUserError(err: unknown): UserError {
  return err instanceof UserError ? err : new UserError(err instanceof Error ? err.message : String(err), { cause: err });
}

/** A time limit on a promise, for code inside workerd (the gateway's function deadline, the read cache's notifications). */

/** What `withDeadline` rejects with when the time is up. */
export class DeadlineExceeded extends Error {
  constructor(ms: number) {
    super(`no answer in ${ms / 1000} s`);
  }
}

/** `work`, or DeadlineExceeded after `ms`: one timer and one promise (a race with a finally made three more). */
export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineExceeded(ms)), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

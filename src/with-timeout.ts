/**
 * `promise`, or a rejection with `timeoutError()` once `ms` have passed. One timer and one promise
 * per call (this runs on request paths); the promise may still settle after we gave up on it, and
 * its rejection is then ignored rather than left unhandled.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timeoutError()), ms);
    promise.then(
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

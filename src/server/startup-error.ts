/**
 * A dependency or a setting that keeps the process from starting (the database, Redis, the KMS, a
 * port, the spool directory): the CLI prints its message, which names the setting, and exits 1.
 * Its own module so that a listener can throw it without loading every service's code.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}

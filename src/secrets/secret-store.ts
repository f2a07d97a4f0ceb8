/**
 * The secret store: provider secrets per tenant, envelope-encrypted at rest (AES-256-GCM under a
 * data key that the key provider wraps), with a last-known-good in-memory cache for the proxy's
 * hot path. Values never appear in errors or logs.
 */
import { createHash } from 'node:crypto';
import { KeygateError } from '../errors.ts';
import { newId } from '../ids.ts';
import { summarizeError } from '../logger.ts';
import { type Db, fromDbTime, toDbTime } from '../storage/db.ts';
import { isDuplicateKey } from '../storage/write-conflicts.ts';
import { bindingAad, openText, sealText } from './envelope.ts';
import { DataKeyRefusedError, type KeyProvider } from './key-provider.ts';
import { createMasker, type Masker } from './mask.ts';

export interface ProviderSecrets {
  /** Secret name -> value. A frozen object without prototype: treat as read-only. */
  values: Record<string, string>;
  /** Names of the values to mask (all but `AppKey` unless set otherwise). Read-only. */
  sensitive: Set<string>;
  /** Masks the sensitive values in any text; built once per load. */
  mask: Masker;
  /**
   * Names of secrets that are set but do not decrypt: the ciphertext is altered or bound to another
   * place, or the key provider refused its wrapped data key. Not in `values`, and a request that
   * needs one fails with KG_SECRET_UNREADABLE. Absent when every secret decrypted, so the hot path
   * checks one field.
   */
  unreadable?: ReadonlySet<string>;
}

export interface SecretInfo {
  provider: string;
  name: string;
  sensitive: boolean;
  version: number;
  /** ISO 8601 */
  updatedAt: string;
}

export interface Sealed {
  ciphertext: string;
  wrappedKey: string;
  kmsKeyId: string;
}

export interface SecretStore {
  /**
   * Creates or replaces a secret. `sensitive` defaults to the current setting, or for a new secret
   * to `name !== 'AppKey'`. With `trx`, call invalidate() again after the commit.
   */
  set(
    tenantId: string,
    provider: string,
    name: string,
    value: string,
    opts?: { sensitive?: boolean },
    trx?: Db,
  ): Promise<{ created: boolean; version: number; updatedAt: string }>;
  delete(tenantId: string, provider: string, name: string, trx?: Db): Promise<boolean>;
  /**
   * Metadata only, never values; by provider, then name. `range` reads one stretch of that order:
   * at most `limit` secrets after the (provider, name) `after`.
   */
  list(
    tenantId: string,
    provider?: string,
    range?: { after?: readonly [provider: string, name: string]; limit?: number },
  ): Promise<SecretInfo[]>;
  /**
   * Hot path, called by every proxied request: answered from memory when cached, refreshed in
   * the background after `cacheTtlMs`; while the database or KMS is unreachable the last-known-good
   * copy keeps serving. A provider never loaded then fails with KG_SECRETS_UNAVAILABLE (503).
   * A secret whose ciphertext does not decrypt, or whose wrapped data key the key provider
   * refuses, is a lasting fault of that row, not of the provider: it is listed in `unreadable`
   * (and logged at error level when it becomes unreadable, not on every load) while the others
   * load.
   */
  loadProviderSecrets(tenantId: string, provider: string): Promise<ProviderSecrets>;
  /** Per tenant and provider with any, how many secrets its latest load found unreadable. */
  unreadableCounts(): Array<{ tenantId: string; provider: string; count: number }>;
  /** The next load waits for fresh values (falling back to the cached copy if that fails). */
  invalidate(tenantId: string, provider: string): void;
  /** Seals any other value kept encrypted at rest (partner-key secrets); `aad` is the caller's binding. */
  seal(aad: string, plaintext: string): Promise<Sealed>;
  /**
   * Opens a value `seal` made. A wrapped data key the key provider refuses, or a ciphertext that
   * does not authenticate, will never open however often it is asked: KG_SECRET_UNREADABLE, whose
   * message says which part failed (never bytes of either), for the caller to log, not to answer
   * with. A key provider that could not answer (down, slow, throttled, failing) may recover:
   * KG_SECRETS_UNAVAILABLE.
   */
  open(aad: string, sealed: Sealed): Promise<string>;
}

export interface SecretStoreOptions {
  db: Db;
  keyProvider: KeyProvider;
  /** How long an unwrapped data key stays in memory (and a fresh one is reused for new values). */
  dataKeyTtlMs: number;
  /** How long loaded provider secrets count as fresh before a background refresh; default 5 s. */
  cacheTtlMs?: number;
  logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

const SECRET_AAD = 'keygate:secret:v1';
const UNREADABLE_REASON = 'cannot be decrypted: it is bound to another place or was altered';
const SEALED_AAD = 'keygate:sealed:v1';
// The ciphertext column is TEXT (64 KiB on MySQL); base64 of 32 KiB plus IV and tag fits.
const MAX_VALUE_BYTES = 32 * 1024;
const MAX_CACHED_DATA_KEYS = 10_000;
const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;
/** Data keys for `seal()` are kept apart from every tenant's. */
const SEALED_SCOPE = '\0sealed';

interface ProviderState {
  secrets: ProviderSecrets | undefined;
  freshUntil: number;
  /** Set by invalidate(): the next read waits for a reload instead of serving this copy. */
  stale: boolean;
  /** Bumped by invalidate(), so a load that began before the change cannot mark its result fresh. */
  generation: number;
  loading: Promise<ProviderSecrets> | undefined;
}

/** A secret left out of a load, as the log reports it. */
interface UnreadableSecret {
  /** A digest of the row's sealed columns, never logged: a row altered anew is reported anew. */
  fingerprint: string;
  /** Which part failed and what the key provider said; no bytes of either. */
  cause: string;
}

interface EncryptionKey {
  key: Buffer;
  wrappedKey: string;
  kmsKeyId: string;
  expiresAt: number;
}

export function createSecretStore({
  db,
  keyProvider,
  dataKeyTtlMs,
  cacheTtlMs = 5000,
  logger = { warn() {}, error() {} },
}: SecretStoreOptions): SecretStore {
  if (!(dataKeyTtlMs > 0)) throw new Error('createSecretStore: dataKeyTtlMs must be positive');
  if (!(cacheTtlMs > 0)) throw new Error('createSecretStore: cacheTtlMs must be positive');

  const providers = new Map<string, ProviderState>();
  const dataKeys = new Map<string, { key: Buffer; expiresAt: number }>(); // by wrapped key (base64)
  const unwrapping = new Map<string, Promise<Buffer>>();
  const encryptionKeys = new Map<string, EncryptionKey>(); // by scope (tenant id)
  const generatingKeys = new Map<string, Promise<EncryptionKey>>();
  // By cache key: the unreadable secrets already logged, name -> fingerprint.
  const reportedUnreadable = new Map<
    string,
    { tenantId: string; provider: string; secrets: Map<string, string> }
  >();

  // --- data keys ---------------------------------------------------------------------------

  const rememberDataKey = (wrappedKey: string, key: Buffer) => {
    const now = Date.now();
    // Entries go in roughly in expiry order, so expired ones sit at the front.
    for (const [wrapped, entry] of dataKeys) {
      if (entry.expiresAt > now && dataKeys.size < MAX_CACHED_DATA_KEYS) break;
      dataKeys.delete(wrapped);
    }
    dataKeys.delete(wrappedKey);
    dataKeys.set(wrappedKey, { key, expiresAt: now + dataKeyTtlMs });
  };

  /** Unwraps through the KMS at most once per data key per `dataKeyTtlMs`. */
  const unwrapDataKey = (wrappedKey: string, kmsKeyId: string): Promise<Buffer> => {
    const cached = dataKeys.get(wrappedKey);
    if (cached && cached.expiresAt > Date.now()) return Promise.resolve(cached.key);
    let pending = unwrapping.get(wrappedKey);
    if (!pending) {
      pending = keyProvider
        .decryptDataKey(Buffer.from(wrappedKey, 'base64'), kmsKeyId)
        .then((key) => {
          rememberDataKey(wrappedKey, key);
          return key;
        })
        .finally(() => unwrapping.delete(wrappedKey));
      unwrapping.set(wrappedKey, pending);
    }
    return pending;
  };

  /**
   * A data key for new values. One is reused within a scope (a tenant) for `dataKeyTtlMs`, so a
   * provider's secrets set together unwrap with one KMS call; tenants never share one.
   */
  const encryptionKey = (scope: string): Promise<EncryptionKey> => {
    const current = encryptionKeys.get(scope);
    if (current && current.expiresAt > Date.now()) return Promise.resolve(current);
    let pending = generatingKeys.get(scope);
    if (!pending) {
      pending = keyProvider
        .generateDataKey()
        .then(({ plaintext, wrapped, keyId }) => {
          const now = Date.now();
          for (const [s, k] of encryptionKeys) if (k.expiresAt <= now) encryptionKeys.delete(s);
          const fresh = {
            key: plaintext,
            wrappedKey: wrapped.toString('base64'),
            kmsKeyId: keyId,
            expiresAt: now + dataKeyTtlMs,
          };
          encryptionKeys.set(scope, fresh);
          rememberDataKey(fresh.wrappedKey, plaintext);
          return fresh;
        })
        .finally(() => generatingKeys.delete(scope));
      generatingKeys.set(scope, pending);
    }
    return pending;
  };

  const sealUnder = async (scope: string, plaintext: string, aad: Buffer, what: string): Promise<Sealed> => {
    let key: EncryptionKey;
    try {
      key = await encryptionKey(scope);
    } catch (err) {
      throw unavailable(`${what} could not be encrypted: the key provider did not issue a data key`, err);
    }
    return {
      ciphertext: sealText(key.key, plaintext, aad),
      wrappedKey: key.wrappedKey,
      kmsKeyId: key.kmsKeyId,
    };
  };

  const openSealed = async (sealed: Sealed, aad: Buffer, what: string): Promise<string> => {
    let key: Buffer;
    try {
      key = await unwrapDataKey(sealed.wrappedKey, sealed.kmsKeyId);
    } catch (err) {
      if (err instanceof DataKeyRefusedError) {
        throw unreadable(
          `${what} cannot be decrypted: the key provider refused its wrapped data key: ${err.message}`,
          err,
        );
      }
      throw unavailable(`${what} could not be decrypted: the key provider did not unwrap its data key`, err);
    }
    try {
      return openText(key, sealed.ciphertext, aad);
    } catch (err) {
      throw unreadable(
        `${what} cannot be decrypted: its ciphertext does not authenticate under its data key`,
        err,
      );
    }
  };

  // --- provider secrets ----------------------------------------------------------------------

  const fetchProviderSecrets = async (
    tenantId: string,
    provider: string,
  ): Promise<{ secrets: ProviderSecrets; unreadable: Map<string, UnreadableSecret> }> => {
    let rows: Array<{
      name: string;
      sensitive: number;
      ciphertext: string;
      wrapped_key: string;
      kms_key_id: string;
    }>;
    try {
      rows = await db
        .selectFrom('secrets')
        .select(['name', 'sensitive', 'ciphertext', 'wrapped_key', 'kms_key_id'])
        .where('tenant_id', '=', tenantId)
        .where('provider', '=', provider)
        .execute();
    } catch (err) {
      throw unavailable(
        `secrets of provider "${provider}" could not be loaded: the database is unreachable`,
        err,
      );
    }
    const values: Record<string, string> = Object.create(null);
    const sensitive = new Set<string>();
    const unreadable = new Map<string, UnreadableSecret>();
    // A key provider that could not answer (KMS down, slow, throttled, failing) fails the whole
    // load, so the last-known-good copy serves on. A wrapped key it refused, or a ciphertext that
    // does not authenticate under its data key, will never decrypt, whatever is retried: only the
    // secrets sealed that way are left out.
    const opened = await Promise.all(
      rows.map(async (row): Promise<string | UnreadableSecret> => {
        const unreadableAs = (cause: string): UnreadableSecret => ({
          fingerprint: createHash('sha256')
            .update(`${row.kms_key_id}\0${row.wrapped_key}\0${row.ciphertext}`)
            .digest('base64'),
          cause,
        });
        let key: Buffer;
        try {
          key = await unwrapDataKey(row.wrapped_key, row.kms_key_id);
        } catch (err) {
          if (err instanceof DataKeyRefusedError) {
            return unreadableAs(`the key provider refused its wrapped data key: ${err.message}`);
          }
          throw unavailable(
            `secret "${row.name}" of provider "${provider}" could not be decrypted: the key provider did not unwrap its data key`,
            err,
          );
        }
        try {
          return openText(key, row.ciphertext, bindingAad(SECRET_AAD, tenantId, provider, row.name));
        } catch {
          return unreadableAs('its ciphertext does not authenticate under its data key');
        }
      }),
    );
    rows.forEach((row, i) => {
      const value = opened[i]!;
      if (typeof value !== 'string') {
        unreadable.set(row.name, value);
        return;
      }
      values[row.name] = value;
      if (row.sensitive) sensitive.add(row.name);
    });
    return {
      secrets: {
        values: Object.freeze(values),
        sensitive,
        mask: createMasker([...sensitive].map((name) => values[name]!)),
        ...(unreadable.size > 0 ? { unreadable: new Set(unreadable.keys()) } : {}),
      },
      unreadable,
    };
  };

  /**
   * Logs the secrets this load found unreadable that were not already: every load finds them
   * again (every `cacheTtlMs` while the provider is in use), and one line each time they went
   * bad is what an operator can act on. A secret altered anew, or readable in between, is
   * logged again.
   */
  const reportUnreadable = (tenantId: string, provider: string, found: Map<string, UnreadableSecret>) => {
    const key = cacheKey(tenantId, provider);
    const before = reportedUnreadable.get(key)?.secrets;
    const news = [...found]
      .filter(([name, { fingerprint }]) => before?.get(name) !== fingerprint)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (found.size === 0) reportedUnreadable.delete(key);
    else {
      const secrets = new Map([...found].map(([name, { fingerprint }]) => [name, fingerprint]));
      reportedUnreadable.set(key, { tenantId, provider, secrets });
    }
    if (news.length === 0) return;
    logger.error(
      {
        tenantId,
        provider,
        unreadableSecrets: news.map(([name]) => name),
        causes: Object.fromEntries(news.map(([name, { cause }]) => [name, cause])),
        reason:
          'bound to another place or altered; calls that need them fail with KG_SECRET_UNREADABLE until they are set again',
      },
      'provider secrets cannot be decrypted; the others are served',
    );
  };

  const stateOf = (key: string): ProviderState => {
    let state = providers.get(key);
    if (!state) {
      state = { secrets: undefined, freshUntil: 0, stale: false, generation: 0, loading: undefined };
      providers.set(key, state);
    }
    return state;
  };

  /** One load per provider at a time; failures leave the cached copy in place. */
  const reload = (key: string, tenantId: string, provider: string): Promise<ProviderSecrets> => {
    const state = stateOf(key);
    if (state.loading) return state.loading;
    const generation = state.generation;
    const loading = fetchProviderSecrets(tenantId, provider).then(
      ({ secrets, unreadable }) => {
        if (state.generation === generation) {
          // Only a current load says what is unreadable now; an older one could undo its report.
          reportUnreadable(tenantId, provider, unreadable);
          state.secrets = secrets;
          state.stale = false;
          state.freshUntil = Date.now() + cacheTtlMs;
        } else {
          // invalidate() ran meanwhile: these values may predate the change, so they stay stale
          // and never replace a copy that a newer load already stored.
          state.secrets ??= secrets;
        }
        return secrets;
      },
      (err: unknown) => {
        if (state.generation === generation) {
          // Try again after one TTL, not on every request, while a dependency is down.
          state.freshUntil = Date.now() + cacheTtlMs;
          state.stale = false;
          if (!state.secrets && providers.get(key) === state) providers.delete(key);
        }
        logger.warn(
          { tenantId, provider, servingLastKnownGood: state.secrets !== undefined, err: summarizeError(err) },
          'loading provider secrets failed',
        );
        throw err;
      },
    );
    const settled = loading.finally(() => {
      if (state.loading === settled) state.loading = undefined;
    });
    state.loading = settled;
    return settled;
  };

  const cacheKey = (tenantId: string, provider: string) => `${tenantId}\0${provider}`;

  const store: SecretStore = {
    async set(tenantId, provider, name, value, opts = {}, trx) {
      validateLocation(tenantId, provider, name);
      if (typeof value !== 'string' || value.length === 0) {
        throw new KeygateError('KG_VALIDATION_FAILED', `secret "${name}": the value is empty`);
      }
      if (Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) {
        throw new KeygateError(
          'KG_VALIDATION_FAILED',
          `secret "${name}": the value exceeds ${MAX_VALUE_BYTES} bytes`,
        );
      }
      const sealed = await sealUnder(
        tenantId,
        value,
        bindingAad(SECRET_AAD, tenantId, provider, name),
        `secret "${name}" of provider "${provider}"`,
      );
      const at = new Date();
      const write = async (q: Db) => {
        const update = () =>
          q
            .updateTable('secrets')
            .set((eb) => ({
              ciphertext: sealed.ciphertext,
              wrapped_key: sealed.wrappedKey,
              kms_key_id: sealed.kmsKeyId,
              version: eb('version', '+', 1),
              updated_at: toDbTime(at),
              ...(opts.sensitive === undefined ? {} : { sensitive: opts.sensitive ? 1 : 0 }),
            }))
            .where('tenant_id', '=', tenantId)
            .where('provider', '=', provider)
            .where('name', '=', name)
            .executeTakeFirst();
        const readVersion = async () => {
          const row = await q
            .selectFrom('secrets')
            .select('version')
            .where('tenant_id', '=', tenantId)
            .where('provider', '=', provider)
            .where('name', '=', name)
            .executeTakeFirstOrThrow();
          return { created: false, version: Number(row.version) };
        };
        if (Number((await update()).numUpdatedRows) > 0) return readVersion();
        try {
          await q
            .insertInto('secrets')
            .values({
              id: newId('sec'),
              tenant_id: tenantId,
              provider,
              name,
              sensitive: (opts.sensitive ?? name !== 'AppKey') ? 1 : 0,
              ciphertext: sealed.ciphertext,
              wrapped_key: sealed.wrappedKey,
              kms_key_id: sealed.kmsKeyId,
              version: 1,
              created_at: toDbTime(at),
              updated_at: toDbTime(at),
            })
            .execute();
          return { created: true, version: 1 };
        } catch (err) {
          // Someone else created it between our update and insert: replace theirs.
          if (!isDuplicateKey(err)) throw err;
          await update();
          return readVersion();
        }
      };
      const result = trx ? await write(trx) : await db.transaction().execute(write);
      store.invalidate(tenantId, provider);
      return { ...result, updatedAt: at.toISOString() };
    },

    async delete(tenantId, provider, name, trx) {
      const result = await (trx ?? db)
        .deleteFrom('secrets')
        .where('tenant_id', '=', tenantId)
        .where('provider', '=', provider)
        .where('name', '=', name)
        .executeTakeFirst();
      store.invalidate(tenantId, provider);
      return Number(result.numDeletedRows) > 0;
    },

    async list(tenantId, provider, range = {}) {
      let query = db
        .selectFrom('secrets')
        .select(['provider', 'name', 'sensitive', 'version', 'updated_at'])
        .where('tenant_id', '=', tenantId);
      if (provider !== undefined) query = query.where('provider', '=', provider);
      const { after, limit } = range;
      if (after !== undefined) {
        const [afterProvider, afterName] = after;
        query = query.where((eb) =>
          eb.or([
            eb('provider', '>', afterProvider),
            eb.and([eb('provider', '=', afterProvider), eb('name', '>', afterName)]),
          ]),
        );
      }
      if (limit !== undefined) query = query.limit(limit);
      const rows = await query.orderBy('provider').orderBy('name').execute();
      return rows.map((row) => ({
        provider: row.provider,
        name: row.name,
        sensitive: Boolean(Number(row.sensitive)),
        version: Number(row.version),
        updatedAt: new Date(fromDbTime(row.updated_at)).toISOString(),
      }));
    },

    loadProviderSecrets(tenantId, provider) {
      const key = cacheKey(tenantId, provider);
      const state = providers.get(key);
      const cached = state?.secrets;
      if (state && cached) {
        if (!state.stale) {
          if (!state.loading && Date.now() >= state.freshUntil) {
            reload(key, tenantId, provider).catch(() => {}); // logged in reload; the cached copy serves on
          }
          return Promise.resolve(cached);
        }
        return reload(key, tenantId, provider).catch(() => cached);
      }
      return reload(key, tenantId, provider);
    },

    invalidate(tenantId, provider) {
      const state = providers.get(cacheKey(tenantId, provider));
      if (!state) return;
      state.generation++;
      state.stale = true;
      state.loading = undefined;
    },

    unreadableCounts() {
      return [...reportedUnreadable.values()].map(({ tenantId, provider, secrets }) => ({
        tenantId,
        provider,
        count: secrets.size,
      }));
    },

    seal(aad, plaintext) {
      return sealUnder(SEALED_SCOPE, plaintext, bindingAad(SEALED_AAD, aad), 'sealed value');
    },

    open(aad, sealed) {
      return openSealed(sealed, bindingAad(SEALED_AAD, aad), 'sealed value');
    },
  };
  return store;
}

/**
 * The value of a secret the caller needs, or an error naming it (never a value): KG_SECRET_MISSING
 * when it is not set, KG_SECRET_UNREADABLE when it is set but does not decrypt.
 */
export function requireSecret(secrets: ProviderSecrets, provider: string, name: string): string {
  const value = secrets.values[name];
  if (value === undefined) {
    assertSecretReadable(secrets, provider, name);
    throw new KeygateError('KG_SECRET_MISSING', `secret "${name}" of provider "${provider}" is not set`, {
      provider,
      secret: name,
    });
  }
  return value;
}

/** Throws KG_SECRET_UNREADABLE naming the secret when it is set but did not decrypt. */
export function assertSecretReadable(secrets: ProviderSecrets, provider: string, name: string): void {
  if (secrets.unreadable?.has(name)) {
    throw new KeygateError(
      'KG_SECRET_UNREADABLE',
      `secret "${name}" of provider "${provider}" ${UNREADABLE_REASON}; set it again`,
      { provider, secret: name },
    );
  }
}

function validateLocation(tenantId: string, provider: string, name: string): void {
  if (!tenantId) throw new KeygateError('KG_VALIDATION_FAILED', 'tenant id is empty');
  if (!provider || provider.length > 100) {
    throw new KeygateError('KG_VALIDATION_FAILED', 'provider name must be 1 to 100 characters');
  }
  if (!NAME_PATTERN.test(name)) {
    throw new KeygateError(
      'KG_VALIDATION_FAILED',
      'secret name must be 1 to 100 characters of A-Z a-z 0-9 _ . - and not start with . or -',
    );
  }
}

function unavailable(detail: string, cause: unknown): KeygateError {
  return new KeygateError('KG_SECRETS_UNAVAILABLE', detail, {}, { cause });
}

/** A sealed value that will never open as it is stored (see `open`). */
function unreadable(detail: string, cause: unknown): KeygateError {
  return new KeygateError('KG_SECRET_UNREADABLE', detail, {}, { cause });
}

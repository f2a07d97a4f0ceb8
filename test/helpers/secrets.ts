/** Damaging stored secrets on purpose, for the tests of what keygate does with a row it cannot decrypt. */
import type { Db } from '../../src/storage/db.ts';

/** Flips one bit in the middle of a stored ciphertext, as a damaged or tampered row would. */
export function corruptCiphertext(db: Db, tenantId: string, provider: string, name: string): Promise<void> {
  return flipBit(db, tenantId, provider, name, 'ciphertext');
}

/**
 * Flips one bit in a stored wrapped data key, inside its authentication tag (the last 16 bytes,
 * for `local` and for the KMS-protocol server alike): the key provider reads the blob and refuses it.
 */
export function corruptWrappedKey(db: Db, tenantId: string, provider: string, name: string): Promise<void> {
  return flipBit(db, tenantId, provider, name, 'wrapped_key');
}

async function flipBit(
  db: Db,
  tenantId: string,
  provider: string,
  name: string,
  column: 'ciphertext' | 'wrapped_key',
): Promise<void> {
  const row = await db
    .selectFrom('secrets')
    .select(['id', column])
    .where('tenant_id', '=', tenantId)
    .where('provider', '=', provider)
    .where('name', '=', name)
    .executeTakeFirstOrThrow();
  await db
    .updateTable('secrets')
    .set({ [column]: flipped(row[column], column) })
    .where('id', '=', row.id)
    .execute();
}

/** Flips one bit in the middle of the stored ciphertext of one version of a partner key's secret. */
export function corruptPartnerCiphertext(db: Db, keyId: string, version: number): Promise<void> {
  return flipPartnerBit(db, keyId, version, 'ciphertext');
}

/** Flips one bit in the authentication tag of the wrapped data key of one version of a partner key's secret. */
export function corruptPartnerWrappedKey(db: Db, keyId: string, version: number): Promise<void> {
  return flipPartnerBit(db, keyId, version, 'wrapped_key');
}

async function flipPartnerBit(
  db: Db,
  keyId: string,
  version: number,
  column: 'ciphertext' | 'wrapped_key',
): Promise<void> {
  const row = await db
    .selectFrom('partner_key_secrets')
    .select(['id', column])
    .where('key_id', '=', keyId)
    .where('version', '=', version)
    .executeTakeFirstOrThrow();
  await db
    .updateTable('partner_key_secrets')
    .set({ [column]: flipped(row[column], column) })
    .where('id', '=', row.id)
    .execute();
}

function flipped(base64: string, column: 'ciphertext' | 'wrapped_key'): string {
  const bytes = Buffer.from(base64, 'base64');
  bytes[column === 'ciphertext' ? bytes.length >> 1 : bytes.length - 8]! ^= 0x01;
  return bytes.toString('base64');
}

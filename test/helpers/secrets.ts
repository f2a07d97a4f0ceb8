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
  const bytes = Buffer.from(row[column], 'base64');
  bytes[column === 'ciphertext' ? bytes.length >> 1 : bytes.length - 8]! ^= 0x01;
  await db
    .updateTable('secrets')
    .set({ [column]: bytes.toString('base64') })
    .where('id', '=', row.id)
    .execute();
}

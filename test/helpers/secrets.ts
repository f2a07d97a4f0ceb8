/** Damaging stored secrets on purpose, for the tests of what keygate does with a row it cannot decrypt. */
import type { Db } from '../../src/storage/db.ts';

/** Flips one bit in the middle of a stored ciphertext, as a damaged or tampered row would. */
export async function corruptCiphertext(
  db: Db,
  tenantId: string,
  provider: string,
  name: string,
): Promise<void> {
  const row = await db
    .selectFrom('secrets')
    .select(['id', 'ciphertext'])
    .where('tenant_id', '=', tenantId)
    .where('provider', '=', provider)
    .where('name', '=', name)
    .executeTakeFirstOrThrow();
  const bytes = Buffer.from(row.ciphertext, 'base64');
  bytes[bytes.length >> 1]! ^= 0x01;
  await db
    .updateTable('secrets')
    .set({ ciphertext: bytes.toString('base64') })
    .where('id', '=', row.id)
    .execute();
}

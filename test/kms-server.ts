/**
 * A KMS-protocol server for tests: the AWS JSON 1.1 protocol (`POST /`, `X-Amz-Target:
 * TrentService.<Operation>`, base64 blobs) for GenerateDataKey, Encrypt and Decrypt, so the real
 * @aws-sdk/client-kms talks to it over HTTP. SigV4 contents are not verified, but the
 * Authorization header must be there. A test can take it down, slow it, make it answer every
 * call with an error and count its calls.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type KmsOperation = 'GenerateDataKey' | 'Encrypt' | 'Decrypt';

export interface KmsServer {
  /** `http://127.0.0.1:<port>`: the SDK's `endpoint` / AWS_ENDPOINT_URL_KMS. */
  url: string;
  region: string;
  /** ARN of the key created at start. */
  keyArn: string;
  /** Adds a key and returns its ARN. */
  createKey(): string;
  /** Requests received per operation (counted on arrival, whatever the outcome). */
  readonly calls: Record<KmsOperation, number>;
  resetCalls(): void;
  /** Drops every open connection and resets new ones until up(). */
  down(): void;
  /** Undoes down() and failWith(). */
  up(): void;
  /** Answers every call with this error (e.g. ThrottlingException 400, KMSInternalException 500) until up(). */
  failWith(type: string, status: number): void;
  /** Delays every answer by `ms` (0 turns it off). */
  slow(ms: number): void;
  close(): Promise<void>;
}

/**
 * The ways a KMS fails without refusing a blob (each counts as the KMS being down, never as a
 * refused data key): name, and a function that starts the fault on `kms` (up() ends it).
 */
export function transientKmsFaults(kms: KmsServer): Array<[string, () => void]> {
  return [
    ['down', () => kms.down()],
    ['throttling', () => kms.failWith('ThrottlingException', 400)],
    ['failing', () => kms.failWith('KMSInternalException', 500)],
  ];
}

const ACCOUNT = '111122223333';
const BLOB_MAGIC = Buffer.from('KGT1');
const JSON_11 = 'application/x-amz-json-1.1';

class KmsError extends Error {
  readonly type: string;
  readonly status: number;
  constructor(type: string, message: string, status = 400) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

export async function startKmsServer({ region = 'us-east-1' }: { region?: string } = {}): Promise<KmsServer> {
  const keys = new Map<string, Buffer>(); // ARN -> key material
  const calls: Record<KmsOperation, number> = { GenerateDataKey: 0, Encrypt: 0, Decrypt: 0 };
  const sockets = new Set<Socket>();
  let isDown = false;
  let delayMs = 0;
  let failure: KmsError | undefined;

  const createKey = () => {
    const arn = `arn:aws:kms:${region}:${ACCOUNT}:key/${randomUUID()}`;
    keys.set(arn, randomBytes(32));
    return arn;
  };

  /** Accepts a key id (uuid) or a key ARN, as KMS does; aliases are not modelled. */
  const findKey = (keyId: unknown): { arn: string; material: Buffer } => {
    if (typeof keyId !== 'string' || keyId.length === 0)
      throw new KmsError('ValidationException', 'KeyId is required');
    const arn = keyId.startsWith('arn:') ? keyId : `arn:aws:kms:${region}:${ACCOUNT}:key/${keyId}`;
    const material = keys.get(arn);
    if (!material) throw new KmsError('NotFoundException', `Key '${arn}' does not exist`);
    return { arn, material };
  };

  const encrypt = (arn: string, material: Buffer, plaintext: Buffer, context: unknown): Buffer => {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', material, iv);
    cipher.setAAD(contextAad(context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const arnBytes = Buffer.from(arn);
    const arnLength = Buffer.alloc(2);
    arnLength.writeUInt16BE(arnBytes.length);
    return Buffer.concat([BLOB_MAGIC, arnLength, arnBytes, iv, body, cipher.getAuthTag()]);
  };

  const decrypt = (blob: Buffer, context: unknown, keyId: unknown): { arn: string; plaintext: Buffer } => {
    const invalid = () => new KmsError('InvalidCiphertextException', 'The ciphertext is invalid');
    if (blob.length < 6 + 28 || !blob.subarray(0, 4).equals(BLOB_MAGIC)) throw invalid();
    const arnLength = blob.readUInt16BE(4);
    const arn = blob.subarray(6, 6 + arnLength).toString();
    const rest = blob.subarray(6 + arnLength);
    if (rest.length < 28) throw invalid();
    if (keyId !== undefined && findKey(keyId).arn !== arn) {
      throw new KmsError(
        'IncorrectKeyException',
        'The key ID in the request does not identify the key that encrypted the ciphertext',
      );
    }
    const { material } = findKey(arn);
    try {
      const decipher = createDecipheriv('aes-256-gcm', material, rest.subarray(0, 12));
      decipher.setAAD(contextAad(context));
      decipher.setAuthTag(rest.subarray(rest.length - 16));
      return {
        arn,
        plaintext: Buffer.concat([decipher.update(rest.subarray(12, rest.length - 16)), decipher.final()]),
      };
    } catch {
      throw invalid();
    }
  };

  const operations: Record<KmsOperation, (input: Record<string, unknown>) => Record<string, unknown>> = {
    GenerateDataKey(input) {
      const { arn, material } = findKey(input.KeyId);
      let size: number;
      if (input.KeySpec === 'AES_256') size = 32;
      else if (input.KeySpec === 'AES_128') size = 16;
      else if (
        typeof input.NumberOfBytes === 'number' &&
        input.NumberOfBytes >= 1 &&
        input.NumberOfBytes <= 1024
      ) {
        size = input.NumberOfBytes;
      } else throw new KmsError('ValidationException', 'Specify either KeySpec or NumberOfBytes');
      const plaintext = randomBytes(size);
      return {
        KeyId: arn,
        Plaintext: plaintext.toString('base64'),
        CiphertextBlob: encrypt(arn, material, plaintext, input.EncryptionContext).toString('base64'),
      };
    },
    Encrypt(input) {
      const { arn, material } = findKey(input.KeyId);
      const plaintext = blobField(input, 'Plaintext');
      if (plaintext.length === 0 || plaintext.length > 4096) {
        throw new KmsError('ValidationException', 'Plaintext must be 1 to 4096 bytes');
      }
      return {
        KeyId: arn,
        CiphertextBlob: encrypt(arn, material, plaintext, input.EncryptionContext).toString('base64'),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      };
    },
    Decrypt(input) {
      const { arn, plaintext } = decrypt(
        blobField(input, 'CiphertextBlob'),
        input.EncryptionContext,
        input.KeyId,
      );
      return {
        KeyId: arn,
        Plaintext: plaintext.toString('base64'),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      };
    },
  };

  const handle = async (req: http.IncomingMessage): Promise<{ status: number; body: unknown }> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = req.headers['x-amz-target'];
    const operation =
      typeof target === 'string' && target.startsWith('TrentService.') ? target.slice(13) : '';
    if (Object.hasOwn(operations, operation)) calls[operation as KmsOperation]++;
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    try {
      if (req.method !== 'POST' || req.url !== '/')
        throw new KmsError('UnknownOperationException', 'POST / only', 404);
      if (!req.headers.authorization) {
        throw new KmsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
      }
      if (!req.headers['content-type']?.startsWith(JSON_11)) {
        throw new KmsError('SerializationException', `Content-Type must be ${JSON_11}`);
      }
      if (!Object.hasOwn(operations, operation)) {
        throw new KmsError('UnknownOperationException', `Unknown operation ${String(target)}`);
      }
      if (failure) throw failure;
      let input: unknown;
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch {
        throw new KmsError('SerializationException', 'Body is not JSON');
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        throw new KmsError('SerializationException', 'Body is not a JSON object');
      }
      return { status: 200, body: operations[operation as KmsOperation](input as Record<string, unknown>) };
    } catch (err) {
      if (err instanceof KmsError)
        return { status: err.status, body: { __type: err.type, message: err.message } };
      return { status: 500, body: { __type: 'KMSInternalException', message: 'internal error' } };
    }
  };

  const server = http.createServer((req, res) => {
    handle(req).then(
      ({ status, body }) => {
        if (res.destroyed) return;
        res.writeHead(status, { 'content-type': JSON_11, 'x-amzn-requestid': randomUUID() });
        res.end(JSON.stringify(body));
      },
      () => res.destroy(),
    );
  });
  server.on('connection', (socket) => {
    if (isDown) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    region,
    keyArn: createKey(),
    createKey,
    calls,
    resetCalls() {
      for (const op of Object.keys(calls) as KmsOperation[]) calls[op] = 0;
    },
    down() {
      isDown = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    up() {
      isDown = false;
      failure = undefined;
    },
    failWith(type, status) {
      failure = new KmsError(type, `${type} (made by the test)`, status);
    },
    slow(ms) {
      delayMs = ms;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function blobField(input: Record<string, unknown>, name: string): Buffer {
  const value = input[name];
  if (typeof value !== 'string' || value.length === 0)
    throw new KmsError('ValidationException', `${name} is required`);
  return Buffer.from(value, 'base64');
}

/** The encryption context binds like KMS's: the same pairs, in any order, must be given to Decrypt. */
function contextAad(context: unknown): Buffer {
  if (context === undefined || context === null) return Buffer.alloc(0);
  if (typeof context !== 'object' || Array.isArray(context)) {
    throw new KmsError('ValidationException', 'EncryptionContext must be a map of strings');
  }
  const pairs = Object.entries(context as Record<string, unknown>).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  return Buffer.from(JSON.stringify(pairs));
}

/**
 * Reads a request body from plain 'data' / 'end' events, with a byte limit. Both listeners read
 * every body this way: an async iterator over a stream costs several objects and promise turns
 * per request, which shows on a gateway's hot path.
 *
 * Past the limit the promise rejects with `tooLarge()` and the stream is drained, not destroyed:
 * destroying a node:http request resets the socket, and the caller would never see the 413.
 */
import type { Readable } from 'node:stream';

export function readBody(
  stream: Readable,
  limitBytes: number,
  tooLarge: () => Error,
  onChunk?: (chunk: Buffer) => void,
): Promise<{ body: Buffer; size: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        fail(tooLarge());
        stream.resume();
        return;
      }
      onChunk?.(chunk);
      chunks.push(chunk);
    };
    const onEnd = () => {
      stopListening();
      resolve({ body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), size });
    };
    const fail = (err: Error) => {
      stopListening();
      reject(err);
    };
    const onClose = () => {
      if (!stream.readableEnded) fail(new Error('the caller closed the connection before the body ended'));
    };
    const stopListening = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', fail);
      stream.off('close', onClose);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', fail);
    stream.on('close', onClose);
  });
}

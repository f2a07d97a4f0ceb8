import type { BodyValue } from '../../sandbox/index.ts';

/** The request as signing sees and changes it, before it becomes bytes on the wire. */
export interface OutgoingRequest {
  method: string;
  /** Absolute URL without the query, or a path relative to prefixUrl. */
  uri: string;
  headers: Record<string, string>;
  query: Array<[string, string]>;
  body: BodyValue;
}

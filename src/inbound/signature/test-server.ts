/**
 * Test helper: a node:http server on port 0 that verifies KG1-HMAC-SHA256 with the gateway's own
 * steps (header parsing, streaming body hash, canonical string, constant-time check), so the SDK,
 * the test vectors and the curl recipe are checked against the real verifier over real HTTP.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROBLEM_CONTENT_TYPE, toProblem } from '../../errors.ts';
import { canonicalString, splitRequestTarget } from './canonical.ts';
import {
  assertContentLengthWithinLimit,
  hashBodyWithLimit,
  type PartnerSecret,
  parseSignatureHeaders,
  verifyPartnerSignature,
} from './verify.ts';

export interface VerifiedRequest {
  method: string;
  target: string;
  signatureHex: string;
  canonical: string;
  matchedVersion: number;
  body: string;
  contentType: string | undefined;
}

export interface VerifyingServer {
  url: string;
  verified: VerifiedRequest[];
  close(): Promise<void>;
}

export async function startVerifyingServer(options: {
  secrets: PartnerSecret[];
  /** The verifier's clock in unix seconds; defaults to the real one. */
  nowSeconds?: () => number;
  bodyLimitBytes?: number;
}): Promise<VerifyingServer> {
  const { secrets, nowSeconds, bodyLimitBytes } = options;
  const verified: VerifiedRequest[] = [];
  const server = http.createServer(async (req, res) => {
    try {
      assertContentLengthWithinLimit(req.headers['content-length'], bodyLimitBytes);
      const headers = parseSignatureHeaders(req.headers, {
        rawHeaders: req.rawHeaders,
        nowSeconds: nowSeconds?.(),
      });
      const target = req.url ?? '/';
      const { path, rawQuery } = splitRequestTarget(target);
      const body = await hashBodyWithLimit(req, bodyLimitBytes);
      const canonical = canonicalString({
        method: req.method ?? '',
        path,
        rawQuery,
        keyId: headers.keyId,
        timestamp: headers.timestamp,
        nonce: headers.nonce,
        bodySha256Hex: body.sha256Hex,
      });
      const { matchedVersion } = verifyPartnerSignature({
        canonical,
        signatureHex: headers.signatureHex,
        secrets,
      });
      verified.push({
        method: req.method ?? '',
        target,
        signatureHex: headers.signatureHex,
        canonical,
        matchedVersion,
        body: body.body.toString('utf8'),
        contentType: req.headers['content-type'],
      });
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ verified: true, matchedVersion }));
    } catch (err) {
      const problem = toProblem(err);
      res
        .writeHead(problem.status, { 'content-type': PROBLEM_CONTENT_TYPE, connection: 'close' })
        .end(JSON.stringify(problem));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    verified,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

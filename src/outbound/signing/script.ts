/**
 * `script` mode: the provider's request script in the sandbox. The cached token is fetched
 * before the run so `token_load()` stays synchronous and the common path crosses into the isolate
 * once. When no token is cached and the script fetches its own, the run is single-flighted
 * across nodes: one request runs it (and its `token_save`), the others wait and reuse the token.
 */
import { KeygateError } from '../../errors.ts';
import type { RequestScriptResult, ScriptEffects, ScriptHost } from '../../sandbox/index.ts';
import type { LoadedProvider } from '../provider-registry.ts';
import type { TokenCache } from '../token-cache/index.ts';
import type { OutgoingRequest } from './types.ts';

/** Thrown inside a token flight whose script ran but saved no token: nothing to share. */
class NoTokenSaved extends Error {
  readonly result: RequestScriptResult;
  constructor(result: RequestScriptResult) {
    super('script saved no token');
    this.result = result;
  }
}

export async function signWithScript(
  req: OutgoingRequest,
  provider: LoadedProvider,
  host: Omit<ScriptHost, 'token'>,
  tokens: TokenCache,
  onTokenFetch?: (outcome: 'ok' | 'error') => void,
): Promise<RequestScriptResult> {
  const script = provider.request!;
  const input = {
    method: req.method,
    uri: req.uri,
    headers: req.headers,
    query: req.query,
    body: req.body,
  };
  const cached = await tokens.get(provider.tenantId, provider.name);
  let result: RequestScriptResult;
  if (cached || !provider.scriptFetchesToken) {
    result = await script.runRequest(input, { ...host, token: cached?.token ?? null });
    await applyTokenEffects(result.effects, provider, tokens);
  } else {
    // One caller's run fetches the token for every caller waiting on the flight: a body that is not
    // JSON must fail only its own request, so it is parsed before the flight (KG_BAD_REQUEST).
    if (input.body.kind === 'json') void input.body.value;
    result = await runInTokenFlight(input, provider, host, tokens, onTokenFetch);
  }
  Object.assign(req, {
    method: result.method,
    uri: result.uri,
    headers: result.headers,
    query: result.query,
    body: result.body,
  });
  return result;
}

async function runInTokenFlight(
  input: Parameters<NonNullable<LoadedProvider['request']>['runRequest']>[0],
  provider: LoadedProvider,
  host: Omit<ScriptHost, 'token'>,
  tokens: TokenCache,
  onTokenFetch?: (outcome: 'ok' | 'error') => void,
): Promise<RequestScriptResult> {
  const script = provider.request!;
  let leaderResult: RequestScriptResult | undefined;
  try {
    const token = await tokens.getOrFetch(provider.tenantId, provider.name, async () => {
      try {
        leaderResult = await script.runRequest(input, { ...host, token: null });
      } catch (err) {
        onTokenFetch?.('error');
        throw err;
      }
      const save = lastSave(leaderResult.effects);
      if (!save) throw new NoTokenSaved(leaderResult);
      onTokenFetch?.('ok');
      return { token: save.token, expireTime: save.expireTime };
    });
    if (leaderResult) {
      // The flight stored the token; apply anything else the script asked for (a later delete).
      await applyTokenEffects(leaderResult.effects, provider, tokens, { skipLastSave: true });
      return leaderResult;
    }
    const result = await script.runRequest(input, { ...host, token: token.token });
    await applyTokenEffects(result.effects, provider, tokens);
    return result;
  } catch (err) {
    if (leaderResult) {
      // This request ran the script itself: its result stands, or its error does.
      if (err instanceof NoTokenSaved) return err.result;
      throw err;
    }
    // Another request's run (maybe on another node) failed or saved no token: run this one on
    // its own, so it fails or succeeds for its own reasons.
    const result = await script.runRequest(input, { ...host, token: null });
    await applyTokenEffects(result.effects, provider, tokens);
    return result;
  }
}

function lastSave(effects: ScriptEffects): { token: string; expireTime: unknown } | undefined {
  const last = effects.tokenOps.at(-1);
  return last?.op === 'save' ? last : undefined;
}

/** Applies token_save / token_delete in the order the script made them. */
export async function applyTokenEffects(
  effects: ScriptEffects,
  provider: LoadedProvider,
  tokens: TokenCache,
  opts: { skipLastSave?: boolean } = {},
): Promise<void> {
  const ops = opts.skipLastSave ? effects.tokenOps.slice(0, -1) : effects.tokenOps;
  for (const op of ops) {
    try {
      if (op.op === 'save') await tokens.set(provider.tenantId, provider.name, op.token, op.expireTime);
      else await tokens.delete(provider.tenantId, provider.name);
    } catch (err) {
      if (err instanceof KeygateError) throw err;
      throw new KeygateError('KG_SCRIPT_ERROR', `token_save: ${(err as Error).message}`);
    }
  }
}

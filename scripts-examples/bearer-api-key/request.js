// A plain API key in a header: Authorization: Bearer <ApiKey>.
// For providers that want another header, change the name (e.g. reqHeaders.set('X-API-Key', key)).
// Secrets: ApiKey.
function (reqHeaders, reqParams, reqBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {
  reqHeaders.set('Authorization', 'Bearer ' + secret('ApiKey'));
}

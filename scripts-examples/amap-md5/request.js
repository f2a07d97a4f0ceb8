// Amap (Gaode) Web service API digital signature: sig = MD5(sorted "name=value" pairs joined by &, then the private key).
// https://lbs.amap.com/faq/quota-key/key/41181
// Values go into the MD5 as they are (not URL-encoded); the proxy URL-encodes them on the wire.
// Signs the query, or the fields of an application/x-www-form-urlencoded body.
// Secrets: AppKey (the `key` parameter, added when set), AppSecret (the signature private key).
function (reqHeaders, reqParams, reqBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {
  var privateKey = secret('AppSecret');
  var contentType = (reqHeaders.get('content-type') || '').toLowerCase();
  var params = contentType.indexOf('application/x-www-form-urlencoded') === 0 ? reqBody : reqParams;

  if (AppKey) params.set('key', AppKey);
  params.delete('sig');
  var names = params.keys().slice().sort();
  var parts = [];
  for (var i = 0; i < names.length; i++) parts.push(names[i] + '=' + params.get(names[i]));
  params.set('sig', md5(parts.join('&') + privateKey));
}

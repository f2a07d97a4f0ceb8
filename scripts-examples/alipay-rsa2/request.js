// Alipay OpenAPI (gateway.do), sign_type RSA2: SHA256withRSA over the sorted parameters.
// https://opendocs.alipay.com/common/02kf5q
// Every parameter except `sign` and the empty ones, sorted by name, joined as name=value with &,
// values as they are (not URL-encoded); the signature is base64.
// The caller posts the business parameters (method, biz_content, notify_url, ...) as an
// application/x-www-form-urlencoded body, or in the query of a GET. A caller-sent `timestamp` is kept.
// Secrets: AppKey (app_id), AppPrivateKey (PEM, PKCS#1 or PKCS#8; or the key tool's bare base64, which
// is wrapped as "RSA PRIVATE KEY": OpenSSL reads a PKCS#1 or a PKCS#8 body under that armor).
function (reqHeaders, reqParams, reqBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {
  function pem(value, label) {
    var text = String(value).trim();
    if (text.indexOf('-----BEGIN ') === 0) return text;
    var body = text.replace(/\s+/g, '');
    var lines = [];
    for (var i = 0; i < body.length; i += 64) lines.push(body.slice(i, i + 64));
    return '-----BEGIN ' + label + '-----\n' + lines.join('\n') + '\n-----END ' + label + '-----\n';
  }
  function isEmpty(value) {
    return value === null || value === undefined || value === '';
  }

  var contentType = (reqHeaders.get('content-type') || '').toLowerCase();
  var inBody = contentType.indexOf('application/x-www-form-urlencoded') === 0;
  if (!inBody && reqBody.raw() !== '') {
    throw new Error('alipay-rsa2: send the parameters as an application/x-www-form-urlencoded body, or in the query of a GET');
  }
  var params = inBody ? reqBody : reqParams;
  function setDefault(name, value) {
    if (isEmpty(params.get(name))) params.set(name, value);
  }

  params.set('app_id', secret('AppKey'));
  params.set('sign_type', 'RSA2');
  setDefault('format', 'JSON');
  setDefault('charset', 'utf-8');
  setDefault('version', '1.0');
  // yyyy-MM-dd HH:mm:ss in Beijing time (UTC+8)
  setDefault('timestamp', date_iso8601(now_ms() + 8 * 3600 * 1000).slice(0, 19).replace('T', ' '));
  params.delete('sign');

  var names = params.keys().slice().sort();
  var parts = [];
  for (var i = 0; i < names.length; i++) {
    var value = params.get(names[i]);
    if (!isEmpty(value)) parts.push(names[i] + '=' + value);
  }
  params.set('sign', rsa_sha256_sign(pem(secret('AppPrivateKey'), 'RSA PRIVATE KEY'), parts.join('&')));
}

// Tencent Cloud API 3.0, signature v3 (TC3-HMAC-SHA256), POST with a JSON body.
// https://www.tencentcloud.com/document/api/213/30654
// Secrets: AppKey (SecretId), AppSecret (SecretKey), Service (only when the host is not
// <service>.tencentcloudapi.com), Region and SessionToken (both optional).
// The caller sends X-TC-Action and X-TC-Version (and X-TC-Region unless the Region secret is set);
// a caller-sent X-TC-Timestamp is signed as it is (how the documented example is replayed).
function (reqHeaders, reqParams, reqBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {
  function optionalSecret(name) {
    try {
      return secret(name);
    } catch (e) {
      return null;
    }
  }

  if (reqHeaders.getMethod() !== 'POST') {
    // TC3 signs Content-Type, and a request without a body is sent without one.
    throw new Error('tencent-tc3: call the API with POST and a JSON body');
  }
  var secretId = secret('AppKey');
  var secretKey = secret('AppSecret');

  var prefix = /^(https?):\/\/(?:[^@\/?#]*@)?([^\/?#]+)([^?#]*)/i.exec(PrefixUrl);
  if (prefix === null) throw new Error('tencent-tc3: prefixUrl is not an http(s) URL');
  var scheme = prefix[1].toLowerCase();
  var host = prefix[2].toLowerCase();
  if ((scheme === 'https' && /:443$/.test(host)) || (scheme === 'http' && /:80$/.test(host))) host = host.replace(/:\d+$/, '');
  var path = prefix[3].replace(/\/+$/, '') + reqHeaders.getURI();
  var service = /\.tencentcloudapi\.com$/.test(host) ? host.split('.')[0] : secret('Service');

  var timestamp = reqHeaders.get('X-TC-Timestamp') || String(Math.floor(now_ms() / 1000));
  if (!/^\d{1,12}$/.test(timestamp)) throw new Error('tencent-tc3: X-TC-Timestamp must be unix seconds');
  reqHeaders.set('X-TC-Timestamp', timestamp);
  var region = optionalSecret('Region');
  if (region && reqHeaders.get('X-TC-Region') === null) reqHeaders.set('X-TC-Region', region);
  var token = optionalSecret('SessionToken');
  if (token) reqHeaders.set('X-TC-Token', token);

  var contentType = reqHeaders.get('content-type');
  if (contentType === null) {
    contentType = 'application/json; charset=utf-8';
    reqHeaders.set('content-type', contentType);
  }
  // Hash exactly the bytes that will be sent, and pin them.
  var payload = reqBody.raw();
  reqBody.setRaw(payload);

  // Header names and values lower-cased and trimmed, sorted by name.
  var canonicalHeaders = 'content-type:' + contentType.trim().toLowerCase() + '\n' + 'host:' + host + '\n';
  var signedHeaders = 'content-type;host';
  // POST: the canonical query string is always empty.
  var canonicalRequest = 'POST\n' + path + '\n\n' + canonicalHeaders + '\n' + signedHeaders + '\n' + sha256(payload);

  var date = date_iso8601(Number(timestamp) * 1000).slice(0, 10); // UTC, never local time
  var scope = date + '/' + service + '/tc3_request';
  var stringToSign = 'TC3-HMAC-SHA256\n' + timestamp + '\n' + scope + '\n' + sha256(canonicalRequest);

  var secretDate = hmac_sha256_bytes('TC3' + secretKey, date);
  var secretService = hmac_sha256_bytes(secretDate, service);
  var secretSigning = hmac_sha256_bytes(secretService, 'tc3_request');
  var signature = hmac_sha256(secretSigning, stringToSign);

  reqHeaders.set(
    'Authorization',
    'TC3-HMAC-SHA256 Credential=' + secretId + '/' + scope + ', SignedHeaders=' + signedHeaders + ', Signature=' + signature,
  );
}

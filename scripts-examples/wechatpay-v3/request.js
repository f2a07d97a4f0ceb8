// WeChat Pay APIv3 request signature (WECHATPAY2-SHA256-RSA2048).
// https://pay.weixin.qq.com/docs/merchant/development/interface-rules/signature-generation.html
// Signs "METHOD\nURL\ntimestamp\nnonce\nbody\n" with SHA256withRSA and the merchant API key.
// Secrets: MchId, MchSerialNo (serial number of the merchant API certificate), MchPrivateKey (PEM,
// apiclient_key.pem). X-Sign-Timestamp / X-Sign-Nonce from the caller pin the timestamp and nonce
// (to replay WeChat's documented example with `keygate script test`); they are not sent on.
function (reqHeaders, reqParams, reqBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {
  var mchId = secret('MchId');
  var serialNo = secret('MchSerialNo');
  var privateKey = secret('MchPrivateKey');

  var prefix = /^https?:\/\/[^\/?#]+([^?#]*)/i.exec(PrefixUrl);
  if (prefix === null) throw new Error('wechatpay-v3: prefixUrl is not an http(s) URL');
  var uri = reqHeaders.getURI();

  // The URL that is signed must be the one that is sent: move the query into the URI, encoded once
  // here, so that the proxy sends exactly these bytes.
  var names = reqParams.keys();
  var parts = [];
  for (var i = 0; i < names.length; i++) {
    parts.push(url_encode(names[i]) + '=' + url_encode(reqParams.get(names[i])));
  }
  for (var j = 0; j < names.length; j++) reqParams.delete(names[j]);
  var query = parts.join('&');
  if (query !== '') reqHeaders.setURI(uri + '?' + query);
  var url = prefix[1].replace(/\/+$/, '') + uri + (query !== '' ? '?' + query : '');

  // GET has an empty body; otherwise the JSON exactly as sent.
  var body = reqBody.raw();
  if (body !== '') reqBody.setRaw(body);

  var timestamp = reqHeaders.get('X-Sign-Timestamp') || String(Math.floor(now_ms() / 1000));
  var nonceStr = reqHeaders.get('X-Sign-Nonce') || nonce(32);
  reqHeaders.delete('X-Sign-Timestamp');
  reqHeaders.delete('X-Sign-Nonce');

  var message = reqHeaders.getMethod() + '\n' + url + '\n' + timestamp + '\n' + nonceStr + '\n' + body + '\n';
  var signature = rsa_sha256_sign(privateKey, message);

  reqHeaders.set(
    'Authorization',
    'WECHATPAY2-SHA256-RSA2048 mchid="' + mchId + '",nonce_str="' + nonceStr + '",signature="' + signature +
      '",timestamp="' + timestamp + '",serial_no="' + serialNo + '"',
  );
  // WeChat Pay wants JSON answers and refuses requests without a User-Agent.
  reqHeaders.set('Accept', 'application/json');
  if (reqHeaders.get('User-Agent') === null) reqHeaders.set('User-Agent', 'keygate');
}

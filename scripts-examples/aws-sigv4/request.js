// AWS Signature Version 4, header form: Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...
// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
// Secrets: AppKey (access key id), AppSecret (secret access key), Region, Service, SessionToken (optional).
// A caller that sends X-Amz-Date is signed at that time (how the AWS test-suite vectors are replayed).
function (reqHeaders, reqParams, reqBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {
  function optionalSecret(name) {
    try {
      return secret(name);
    } catch (e) {
      return null;
    }
  }
  function compare(a, b) {
    return a < b ? -1 : a > b ? 1 : 0;
  }

  var accessKeyId = secret('AppKey');
  var region = secret('Region');
  var service = secret('Service');
  var signingKeySecret = secret('AppSecret');

  // Host and base path of the final URL; the HTTP client sends Host exactly like this.
  var prefix = /^(https?):\/\/(?:[^@\/?#]*@)?([^\/?#]+)([^?#]*)/i.exec(PrefixUrl);
  if (prefix === null) throw new Error('aws-sigv4: prefixUrl is not an http(s) URL');
  var scheme = prefix[1].toLowerCase();
  var host = prefix[2].toLowerCase();
  if ((scheme === 'https' && /:443$/.test(host)) || (scheme === 'http' && /:80$/.test(host))) host = host.replace(/:\d+$/, '');
  var path = prefix[3].replace(/\/+$/, '') + reqHeaders.getURI();

  // Canonical URI: S3 signs the path as sent; every other service normalizes it and encodes each
  // segment once more (the path on the wire is already percent-encoded).
  var canonicalUri = path;
  if (service !== 's3') {
    var segments = [];
    var raw = path.split('/');
    for (var i = 0; i < raw.length; i++) {
      if (raw[i] === '' || raw[i] === '.') continue;
      if (raw[i] === '..') segments.pop();
      else segments.push(url_encode(raw[i]));
    }
    canonicalUri = '/' + segments.join('/') + (segments.length > 0 && /\/$/.test(path) ? '/' : '');
  }

  // Canonical query: RFC 3986-encoded names and values, sorted by name, then value.
  var names = reqParams.keys();
  var pairs = [];
  for (var j = 0; j < names.length; j++) pairs.push([url_encode(names[j]), url_encode(reqParams.get(names[j]))]);
  pairs.sort(function (a, b) {
    return compare(a[0], b[0]) || compare(a[1], b[1]);
  });
  var canonicalQuery = pairs
    .map(function (p) {
      return p[0] + '=' + p[1];
    })
    .join('&');

  var amzDate = reqHeaders.get('X-Amz-Date') || date_amz();
  if (!/^\d{8}T\d{6}Z$/.test(amzDate)) throw new Error('aws-sigv4: X-Amz-Date must look like 20150830T123600Z');
  reqHeaders.set('X-Amz-Date', amzDate);
  var sessionToken = optionalSecret('SessionToken');
  if (sessionToken) reqHeaders.set('X-Amz-Security-Token', sessionToken);

  // Hash exactly the bytes that will be sent, and pin them so nothing re-serializes the body.
  var payload = reqBody.raw();
  if (payload !== '') reqBody.setRaw(payload);
  var payloadHash = sha256(payload);
  if (service === 's3') reqHeaders.set('X-Amz-Content-Sha256', payloadHash);

  // Signed headers: host, content-type when there is one, and every x-amz-* header.
  var headers = { host: host };
  var headerNames = reqHeaders.keys();
  for (var k = 0; k < headerNames.length; k++) {
    var lower = headerNames[k].toLowerCase();
    if (lower === 'content-type' || lower.indexOf('x-amz-') === 0) {
      headers[lower] = String(reqHeaders.get(lower)).trim().replace(/\s+/g, ' ');
    }
  }
  var signedNames = Object.keys(headers).sort();
  var canonicalHeaders = '';
  for (var n = 0; n < signedNames.length; n++) canonicalHeaders += signedNames[n] + ':' + headers[signedNames[n]] + '\n';
  var signedHeaders = signedNames.join(';');

  var canonicalRequest = [
    reqHeaders.getMethod(),
    canonicalUri,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    payloadHash,
  ].join('\n');
  var dateStamp = amzDate.slice(0, 8);
  var scope = dateStamp + '/' + region + '/' + service + '/aws4_request';
  var stringToSign = 'AWS4-HMAC-SHA256\n' + amzDate + '\n' + scope + '\n' + sha256(canonicalRequest);

  var kDate = hmac_sha256_bytes('AWS4' + signingKeySecret, dateStamp);
  var kRegion = hmac_sha256_bytes(kDate, region);
  var kService = hmac_sha256_bytes(kRegion, service);
  var kSigning = hmac_sha256_bytes(kService, 'aws4_request');
  var signature = hmac_sha256(kSigning, stringToSign);

  reqHeaders.set(
    'Authorization',
    'AWS4-HMAC-SHA256 Credential=' + accessKeyId + '/' + scope + ', SignedHeaders=' + signedHeaders + ', Signature=' + signature,
  );
}

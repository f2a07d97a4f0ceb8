// Alipay OpenAPI answers: {"<method>_response": {...}, "sign": "..."}. The signature covers the
// response member's JSON text exactly as received, so it is cut out of respRaw(), never re-serialized.
// https://opendocs.alipay.com/common/02mse7
// Secrets: AlipayPublicKey (the Alipay public key: PEM, or the console's bare base64).
function (respBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {
  function pem(value, label) {
    var text = String(value).trim();
    if (text.indexOf('-----BEGIN ') === 0) return text;
    var body = text.replace(/\s+/g, '');
    var lines = [];
    for (var i = 0; i < body.length; i += 64) lines.push(body.slice(i, i + 64));
    return '-----BEGIN ' + label + '-----\n' + lines.join('\n') + '\n-----END ' + label + '-----\n';
  }
  function malformed() {
    return new Error('alipay-rsa2: the answer is not a JSON object');
  }
  function skipSpace(s, i) {
    while (i < s.length && ' \t\r\n'.indexOf(s[i]) !== -1) i++;
    return i;
  }
  function endOfString(s, i) {
    for (i++; i < s.length; i++) {
      if (s[i] === '\\') i++;
      else if (s[i] === '"') return i + 1;
    }
    throw malformed();
  }
  function endOfValue(s, i) {
    if (s[i] === '"') return endOfString(s, i);
    if (s[i] !== '{' && s[i] !== '[') {
      while (i < s.length && ',}] \t\r\n'.indexOf(s[i]) === -1) i++;
      return i;
    }
    var depth = 0;
    for (; i < s.length; i++) {
      if (s[i] === '"') i = endOfString(s, i) - 1;
      else if (s[i] === '{' || s[i] === '[') depth++;
      else if (s[i] === '}' || s[i] === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    throw malformed();
  }
  /** The text of a top-level member's value, exactly as it appears in `s`. */
  function memberText(s, name) {
    var i = skipSpace(s, 0);
    if (s[i] !== '{') throw malformed();
    i = skipSpace(s, i + 1);
    while (s[i] === '"') {
      var keyEnd = endOfString(s, i);
      var key = JSON.parse(s.slice(i, keyEnd));
      i = skipSpace(s, keyEnd);
      if (s[i] !== ':') throw malformed();
      i = skipSpace(s, i + 1);
      var valueEnd = endOfValue(s, i);
      if (key === name) return s.slice(i, valueEnd);
      i = skipSpace(s, valueEnd);
      if (s[i] === ',') i = skipSpace(s, i + 1);
    }
    throw malformed();
  }

  // The gateway labels its JSON text/html, so respBody is usually null: parse the text here.
  var raw = respRaw();
  var answer = respBody;
  if (answer === null) {
    try {
      answer = JSON.parse(raw);
    } catch (e) {
      answer = null;
    }
  }
  if (answer === null || typeof answer !== 'object') {
    throw new Error('alipay-rsa2: the answer (HTTP ' + respStatus() + ') is not JSON');
  }
  var member = null;
  for (var key in answer) {
    if (/_response$/.test(key)) {
      member = key;
      break;
    }
  }
  if (member === null) throw new Error('alipay-rsa2: the answer has no "..._response" member');
  var sign = answer.sign;
  if (typeof sign !== 'string' || sign === '') {
    // Alipay leaves some failures unsigned (an unknown app_id, say); a success must be signed.
    var result = answer[member];
    if (result !== null && typeof result === 'object' && result.code !== '10000') return;
    throw new Error('alipay-rsa2: the answer is not signed');
  }
  var content = memberText(raw, member);
  if (!rsa_sha256_verify(pem(secret('AlipayPublicKey'), 'PUBLIC KEY'), content, sign)) {
    throw new Error('alipay-rsa2: the answer\'s sign does not verify with AlipayPublicKey');
  }
}

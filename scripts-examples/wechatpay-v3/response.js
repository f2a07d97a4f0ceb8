// WeChat Pay APIv3 answers: verifies Wechatpay-Signature over "timestamp\nnonce\nbody\n" with the
// platform public key, then decrypts every AEAD_AES_256_GCM resource (the certificate list's
// encrypt_certificate, a callback's resource) in place: `ciphertext` is replaced by `plaintext`.
// https://pay.weixin.qq.com/docs/merchant/development/interface-rules/signature-verification.html
// https://pay.weixin.qq.com/docs/merchant/development/interface-rules/certificate-callback-decryption.html
// Secrets: WechatpayPublicKey (platform certificate or WeChat Pay public key, PEM), ApiV3Key (32 characters).
function (respBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {
  var status = respStatus();
  var signature = respHeader('Wechatpay-Signature');
  var timestamp = respHeader('Wechatpay-Timestamp');
  var nonceStr = respHeader('Wechatpay-Nonce');

  if (signature === null || timestamp === null || nonceStr === null) {
    // WeChat Pay does not sign answers to requests it could not authenticate; a success must be signed.
    if (status >= 200 && status < 300) throw new Error('wechatpay-v3: the answer is not signed (no Wechatpay-Signature)');
    return;
  }
  if (!/^\d+$/.test(timestamp) || Math.abs(now_ms() / 1000 - Number(timestamp)) > 300) {
    throw new Error('wechatpay-v3: Wechatpay-Timestamp is more than 5 minutes off');
  }
  var message = timestamp + '\n' + nonceStr + '\n' + respRaw() + '\n';
  if (!rsa_sha256_verify(secret('WechatpayPublicKey'), message, signature)) {
    throw new Error('wechatpay-v3: Wechatpay-Signature does not verify (Wechatpay-Serial ' + respHeader('Wechatpay-Serial') + ')');
  }

  var apiV3Key = null;
  function decryptResources(node, depth) {
    if (node === null || typeof node !== 'object' || depth > 8) return;
    if (node.algorithm === 'AEAD_AES_256_GCM' && typeof node.ciphertext === 'string') {
      if (apiV3Key === null) apiV3Key = secret('ApiV3Key');
      var aad = typeof node.associated_data === 'string' ? node.associated_data : null;
      node.plaintext = aes_gcm_decrypt(apiV3Key, base64_decode(node.ciphertext), node.nonce, aad);
      delete node.ciphertext;
      return;
    }
    for (var key in node) decryptResources(node[key], depth + 1);
  }
  decryptResources(respBody, 0);
}

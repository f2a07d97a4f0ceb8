function (respBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {
  if (401 == respBody["code"]) {
    token_delete();
  }
  if (respBody["data"]) {
    respBody["data"] = aes_cbc_pkcs5_decrypt(AesKey, base64_decode(respBody["data"]), AesIV);
  }
}

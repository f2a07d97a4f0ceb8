// Baidu Maps SN signature: sn = MD5(urlencode(path + "?" + querystring + SK)).
// https://lbsyun.baidu.com/index.php?title=lbscloud/api/appendix
// GET keeps the request's parameter order (the signed query is sent exactly as signed, so the
// proxy does not re-encode it); POST form fields are sorted by name. Encoding is
// application/x-www-form-urlencoded (space as +), as Java's URLEncoder and PHP's urlencode do.
// Secrets: AppKey (ak), AppSecret (sk).
function (reqHeaders, reqParams, reqBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {
  var ak = secret('AppKey');
  var sk = secret('AppSecret');
  var prefix = /^https?:\/\/[^\/?#]+([^?#]*)/i.exec(PrefixUrl);
  if (prefix === null) throw new Error('baidu-sn: prefixUrl is not an http(s) URL');
  var uri = reqHeaders.getURI();
  var path = prefix[1].replace(/\/+$/, '') + uri;

  function queryString(params, names) {
    var parts = [];
    for (var i = 0; i < names.length; i++) parts.push(form_encode(names[i]) + '=' + form_encode(String(params.get(names[i]))));
    return parts.join('&');
  }

  var contentType = (reqHeaders.get('content-type') || '').toLowerCase();
  if (contentType.indexOf('application/x-www-form-urlencoded') === 0) {
    reqBody.set('ak', ak);
    reqBody.delete('sn');
    var sorted = queryString(reqBody, reqBody.keys().slice().sort());
    reqBody.set('sn', md5(form_encode(path + '?' + sorted + sk)));
    return;
  }

  reqParams.set('ak', ak); // in place when the caller sent one, else last
  reqParams.delete('sn');
  var names = reqParams.keys();
  var query = queryString(reqParams, names);
  var sn = md5(form_encode(path + '?' + query + sk));
  for (var i = 0; i < names.length; i++) reqParams.delete(names[i]);
  reqHeaders.setURI(uri + '?' + query + '&sn=' + sn);
}

// WebAuthn ceremonies for Strongroom's pages: the second-factor challenge,
// adding a key, and login with a passkey. The server sends options and
// takes results as JSON with binary fields in unpadded base64url.
(function () {
  'use strict';
  function b64u(buf) {
    var s = '';
    new Uint8Array(buf).forEach(function (b) { s += String.fromCharCode(b); });
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function bytes(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) { s += '='; }
    return Uint8Array.from(atob(s), function (c) { return c.charCodeAt(0); }).buffer;
  }
  function creation(o) {
    var pk = o.publicKey;
    pk.challenge = bytes(pk.challenge);
    pk.user.id = bytes(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
    return { publicKey: pk };
  }
  function request(o) {
    var pk = o.publicKey;
    pk.challenge = bytes(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
    return { publicKey: pk };
  }
  function attestation(c) {
    return { id: c.id, rawId: b64u(c.rawId), type: c.type, extensions: {},
      response: { attestationObject: b64u(c.response.attestationObject),
        clientDataJSON: b64u(c.response.clientDataJSON) } };
  }
  function assertion(c) {
    var r = c.response;
    return { id: c.id, rawId: b64u(c.rawId), type: c.type, extensions: {},
      response: { authenticatorData: b64u(r.authenticatorData), clientDataJSON: b64u(r.clientDataJSON),
        signature: b64u(r.signature), userHandle: r.userHandle ? b64u(r.userHandle) : null } };
  }
  function status(t) {
    var s = document.getElementById('webauthn-status');
    if (s) { s.textContent = t; }
  }
  function post(url, body, token) {
    var h = { 'Content-Type': 'application/json' };
    if (token) { h.requesttoken = token; }
    return fetch(url, { method: 'POST', headers: h, body: JSON.stringify(body || {}), credentials: 'same-origin' });
  }
  function failed(e) { status('Failed: ' + (e && e.message ? e.message : e)); }
  // The JSON of an answer; a refusal becomes an error with the server's message.
  function answer(r) {
    return r.json().catch(function () { return {}; }).then(function (j) {
      if (!r.ok) { throw new Error(j.message || ('HTTP ' + r.status)); }
      return j;
    });
  }

  var login = document.getElementById('webauthn-login');
  if (login) {
    document.getElementById('webauthn-start').addEventListener('click', function () {
      post(login.dataset.options, {}).then(answer).then(function (j) {
        return navigator.credentials.get(request(j.options)).then(function (c) {
          login.elements.handle.value = j.handle;
          login.elements.challenge.value = JSON.stringify(assertion(c));
          login.submit();
        });
      }).catch(failed);
    });
  }

  var reg = document.getElementById('webauthn-register');
  if (reg) {
    document.getElementById('webauthn-add').addEventListener('click', function () {
      var token = reg.dataset.requesttoken;
      var body = { passwordless: reg.elements.passwordless.checked };
      post('/index.php/settings/user/webauthn/options', body, token).then(answer).then(function (j) {
        return navigator.credentials.create(creation(j.options)).then(function (c) {
          var done = { handle: j.handle, name: reg.elements.name.value, credential: attestation(c),
            redirect_url: reg.dataset.redirect || null };
          return post('/index.php/settings/user/webauthn/register', done, token);
        });
      }).then(function (r) {
        if (r.redirected) { location.href = r.url; return; }
        if (!r.ok) { return r.text().then(function (t) { throw new Error(t); }); }
        status('Key added.');
        location.reload();
      }).catch(failed);
    });
  }

  var confirm = document.getElementById('confirm-password');
  if (confirm) {
    document.getElementById('confirm-button').addEventListener('click', function () {
      fetch('/index.php/login/confirm', { method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', requesttoken: confirm.dataset.requesttoken },
        body: 'password=' + encodeURIComponent(confirm.elements.password.value) })
        .then(function (r) { status(r.ok ? 'Password confirmed.' : 'Wrong password.'); });
    });
  }

  var passkey = document.getElementById('passkey-login');
  if (passkey) {
    passkey.addEventListener('click', function () {
      var form = document.getElementById('login-form');
      post('/index.php/login/passkey/options', {}).then(answer).then(function (j) {
        return navigator.credentials.get(request(j.options)).then(function (c) {
          return post('/index.php/login/passkey', { handle: j.handle, credential: assertion(c),
            login_token: form.elements.login_token.value, redirect_url: form.elements.redirect_url.value });
        });
      }).then(function (r) {
        return r.json().then(function (j) {
          if (r.ok) { location.href = j.redirect; } else { status(j.message || 'Login failed'); }
        });
      }).catch(failed);
    });
  }
}());

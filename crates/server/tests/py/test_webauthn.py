"""WebAuthn ceremonies in headless Chromium against Strongroom's real pages.

Chromium's virtual authenticator (DevTools WebAuthn domain) plays the
security key. The server is reached as http://localhost:PORT (a secure
context whose host can be a relying party id). Run by tests/it/twofactor.rs
with SR_URL, SR_USER, SR_PASSWORD and SR_AUDIT set.
"""
import functools
import http.server
import json
import os
import sqlite3
import tempfile
import threading
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import sync_playwright

URL = os.environ["SR_URL"]
USER = os.environ["SR_USER"]
PASSWORD = os.environ["SR_PASSWORD"]
AUDIT = os.environ["SR_AUDIT"]
DB = os.environ["SR_DB"]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Page-side helpers the tests inject: run one ceremony with options taken
# from the server, optionally altered, and return the JSON the server takes.
HELPERS = """
window.srB64u = buf => btoa(String.fromCharCode(...new Uint8Array(buf)))
  .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
window.srBytes = s => {
  s = s.replace(/-/g, '+').replace(/_/g, '/'); while (s.length % 4) s += '=';
  return Uint8Array.from(atob(s), c => c.charCodeAt(0)).buffer;
};
window.srAssert = async (options, tweak) => {
  const pk = options.publicKey;
  pk.challenge = srBytes(pk.challenge);
  (pk.allowCredentials || []).forEach(c => c.id = srBytes(c.id));
  if (tweak) Object.assign(pk, tweak);
  (pk.allowCredentials || []).forEach(c => { if (typeof c.id === 'string') c.id = srBytes(c.id); });
  const c = await navigator.credentials.get({ publicKey: pk });
  const r = c.response;
  return { id: c.id, rawId: srB64u(c.rawId), type: c.type, extensions: {},
    response: { authenticatorData: srB64u(r.authenticatorData), clientDataJSON: srB64u(r.clientDataJSON),
      signature: srB64u(r.signature), userHandle: r.userHandle ? srB64u(r.userHandle) : null } };
};
window.srPasskeyAnswer = async (tweak) => {
  const resp = await fetch('/index.php/login/passkey/options', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  if (!resp.ok) throw new Error('options: HTTP ' + resp.status + ' ' + await resp.text());
  const o = await resp.json();
  return { handle: o.handle, credential: await srAssert(o.options, tweak),
    login_token: document.querySelector('input[name=login_token]').value };
};
// The last statement's value is what evaluate() returns: not a function.
0;
"""


VIRTUAL = {"protocol": "ctap2", "ctap2Version": "ctap2_1", "transport": "internal",
           "hasResidentKey": True, "hasUserVerification": True, "isUserVerified": True,
           "automaticPresenceSimulation": True}


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.set_default_timeout(15000)
        cdp = ctx.new_cdp_session(page)
        cdp.send("WebAuthn.enable", {"enableUI": False})
        auth = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL})["authenticatorId"]
        yield {"ctx": ctx, "page": page, "cdp": cdp, "auth": auth}
        ctx.close()


def password_login(page):
    page.goto(f"{URL}/index.php/login")
    page.fill("input[name=user]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def post_passkey(ctx, answer):
    """Posts an answer as a fresh client holding only the login page's cookie."""
    login = next(c["value"] for c in ctx.cookies() if c["name"] == "sr_login")
    req = urllib.request.Request(f"{URL}/index.php/login/passkey", data=json.dumps(answer).encode(),
                                 method="POST", headers={"Content-Type": "application/json",
                                                         "Cookie": f"sr_login={login}"})
    try:
        return urllib.request.urlopen(req).status
    except urllib.error.HTTPError as e:
        return e.code


def passkey_answer(page, ctx, tweak=None):
    """A passkey login's answer, made on the login page but not posted."""
    ctx.clear_cookies()
    page.goto(f"{URL}/index.php/login")
    page.evaluate(HELPERS)
    return page.evaluate("t => srPasskeyAnswer(t)", tweak)


def audit_lines():
    with open(AUDIT, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def failure_reasons():
    return [(e.get("detail") or {}).get("reason", "") for e in audit_lines()
            if e.get("action") == "twofactor.failure"]


def swap_authenticator(browser, cred, sign_count, verified=True):
    """Replaces the virtual authenticator by one holding a copy of `cred`
    with the given counter, as a cloned device would hold it."""
    cdp = browser["cdp"]
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": browser["auth"]})
    options = {**VIRTUAL, "isUserVerified": verified}
    browser["auth"] = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"]
    cdp.send("WebAuthn.addCredential", {"authenticatorId": browser["auth"], "credential": {
        "credentialId": cred["credentialId"], "isResidentCredential": True, "rpId": cred["rpId"],
        "privateKey": cred["privateKey"], "userHandle": cred["userHandle"], "signCount": sign_count}})


def test_register_key_then_second_factor_and_passkey(browser):
    page, ctx = browser["page"], browser["ctx"]
    password_login(page)
    page.wait_for_url("**/index.php/settings/user/security")
    page.goto(f"{URL}/index.php/settings/user/twofactor")
    page.fill("#webauthn-register input[name=name]", "laptop key")
    page.check("#webauthn-register input[name=passwordless]")
    page.click("#webauthn-add")
    page.wait_for_selector("#webauthn-keys li:has-text('laptop key')")
    assert "passkey" in page.inner_text("#webauthn-keys")

    # A second key, a USB one used as a second factor only. (Chromium keeps
    # one internal authenticator at a time: the laptop's is set aside meanwhile.)
    cdp = browser["cdp"]
    laptop = cdp.send("WebAuthn.getCredentials", {"authenticatorId": browser["auth"]})["credentials"][0]
    usb = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        **VIRTUAL, "transport": "usb", "hasResidentKey": False}})["authenticatorId"]
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": browser["auth"]})
    page.fill("#webauthn-register input[name=name]", "usb key")
    page.uncheck("#webauthn-register input[name=passwordless]")
    page.click("#webauthn-add")
    page.wait_for_selector("#webauthn-keys li:has-text('usb key')")
    assert "usb key (second factor" in page.inner_text("#webauthn-keys")
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": usb})
    browser["auth"] = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL})["authenticatorId"]
    cdp.send("WebAuthn.addCredential", {"authenticatorId": browser["auth"], "credential": {
        "credentialId": laptop["credentialId"], "isResidentCredential": True, "rpId": laptop["rpId"],
        "privateKey": laptop["privateKey"], "userHandle": laptop["userHandle"],
        "signCount": laptop["signCount"]}})

    # The key is now the second factor: the password alone leads to the challenge.
    ctx.clear_cookies()
    password_login(page)
    page.wait_for_url("**/index.php/login/challenge/webauthn**")
    page.click("#webauthn-start")
    page.wait_for_url("**/index.php/settings/user/security")

    # And a passkey: no password at all.
    ctx.clear_cookies()
    page.goto(f"{URL}/index.php/login")
    page.click("#passkey-login")
    page.wait_for_url("**/index.php/settings/user/security")

    events = [e for e in audit_lines() if e.get("action") == "login.success"]
    factors = {(e.get("detail") or {}).get("factor") for e in events}
    assert {"webauthn", "passkey"} <= factors, factors


def test_replayed_malformed_and_unknown_answers_are_refused(browser):
    page, ctx = browser["page"], browser["ctx"]
    answer = passkey_answer(page, ctx)
    assert post_passkey(ctx, answer) == 200
    assert post_passkey(ctx, answer) == 403, "a challenge is answered once"
    assert failure_reasons()[-1] == "unknown or expired challenge", failure_reasons()
    assert post_passkey(ctx, {**answer, "credential": {"id": "x"}}) in (403, 422)
    assert post_passkey(ctx, {**answer, "handle": "no-such-handle"}) == 403
    # A challenge past its lifetime (two minutes), aged here in the database.
    answer = passkey_answer(page, ctx)
    with sqlite3.connect(DB) as db:
        db.execute("UPDATE mfa_challenges SET expires_at = 0 WHERE kind = 'passkey'")
    assert post_passkey(ctx, answer) == 403
    assert failure_reasons()[-1] == "unknown or expired challenge", failure_reasons()


def test_assertion_made_for_another_origin_is_refused(browser):
    page, ctx = browser["page"], browser["ctx"]
    # A page of another origin (another port of localhost, so the key still
    # answers for the relying party id) has the key sign the server's options.
    with tempfile.TemporaryDirectory() as www:
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("<!DOCTYPE html><title>elsewhere</title>")
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=www)
        handler.log_message = lambda *a, **k: None
        other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=other.serve_forever, daemon=True).start()
        try:
            req = urllib.request.Request(f"{URL}/index.php/login/passkey/options", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
            options = json.load(urllib.request.urlopen(req))
            page.goto(f"http://localhost:{other.server_address[1]}/")
            page.evaluate(HELPERS)
            cred = page.evaluate("o => srAssert(o)", options["options"])
        finally:
            other.shutdown()
            other.server_close()
    ctx.clear_cookies()
    page.goto(f"{URL}/index.php/login")
    token = page.get_attribute("input[name=login_token]", "value")
    assert post_passkey(ctx, {"handle": options["handle"], "credential": cred, "login_token": token}) == 403
    assert failure_reasons()[-1] == "made for another origin or relying party", failure_reasons()


def test_assertion_without_user_verification_is_refused(browser):
    page, ctx, cdp = browser["page"], browser["ctx"], browser["cdp"]
    cred = cdp.send("WebAuthn.getCredentials", {"authenticatorId": browser["auth"]})["credentials"][0]
    browser["original"] = cred
    # The same key on a device that does not verify the user, with options
    # altered so that it answers anyway (UP set, UV clear): the server
    # asked for verification and must refuse (C009).
    swap_authenticator(browser, cred, cred["signCount"] + 10, verified=False)
    cred_id = cred["credentialId"].replace("+", "-").replace("/", "_").rstrip("=")
    tweak = {"userVerification": "discouraged",
             "allowCredentials": [{"type": "public-key", "id": cred_id}]}
    assert post_passkey(ctx, passkey_answer(page, ctx, tweak)) == 403
    assert failure_reasons()[-1] == "user verification required but not performed", failure_reasons()


def test_cloned_authenticator_is_refused(browser):
    page, ctx = browser["page"], browser["ctx"]
    # A copy of the key whose counter starts again from zero.
    swap_authenticator(browser, browser["original"], 0)
    assert post_passkey(ctx, passkey_answer(page, ctx)) == 403
    assert any("cloned" in r for r in failure_reasons()), failure_reasons()


def test_removing_a_key_needs_the_password(browser):
    page, ctx = browser["page"], browser["ctx"]
    # The genuine key again (its counter ahead of anything the server saw).
    swap_authenticator(browser, browser["original"], browser["original"]["signCount"] + 100)
    ctx.clear_cookies()
    page.goto(f"{URL}/index.php/login")
    page.click("#passkey-login")
    page.wait_for_url("**/index.php/settings/user/security")
    page.goto(f"{URL}/index.php/settings/user/twofactor")
    remove = "#webauthn-keys form"
    page.fill(f"{remove} input[name=password]", "not-the-password")
    with page.expect_response(lambda r: "/webauthn/remove/" in r.url) as wrong:
        page.click(f"{remove} button")
    assert wrong.value.status == 403
    page.goto(f"{URL}/index.php/settings/user/twofactor")
    page.fill(f"{remove} input[name=password]", PASSWORD)
    page.click(f"{remove} button")
    page.wait_for_url("**/index.php/settings/user/twofactor?done=removed")
    assert "laptop key" not in page.inner_text("#webauthn-keys")


def test_a_page_opened_by_ip_address_says_why_keys_cannot_work(browser):
    # WebAuthn takes no IP address as a relying party id: the page shows the
    # server's reason, not a script error.
    page, ctx = browser["page"], browser["ctx"]
    ctx.clear_cookies()
    page.goto(URL.replace("://localhost:", "://127.0.0.1:") + "/index.php/login")
    page.click("#passkey-login")
    # A selector, not wait_for_function: a predicate that is not true at once
    # is polled by evaluating its text in the page, which the page's CSP
    # (no 'unsafe-eval') refuses.
    page.wait_for_selector("#webauthn-status:not(:empty)")
    shown = page.inner_text("#webauthn-status")
    assert "host name" in shown and "undefined" not in shown, shown

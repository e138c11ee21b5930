-- Second factors. A browser session whose password was accepted but whose
-- second factor was not yet passed is "pending": every route refuses it
-- except the challenge pages.
ALTER TABLE app_tokens ADD COLUMN mfa_pending BIGINT NOT NULL DEFAULT 0;

-- TOTP (RFC 6238). enabled = 0 while enrolment waits for a first correct
-- code. last_step is the time step of the last accepted code: only later
-- steps are accepted, so a code is never accepted twice.
CREATE TABLE twofactor_totp (
    user_id BIGINT NOT NULL PRIMARY KEY,
    secret VARCHAR(128) NOT NULL,
    enabled BIGINT NOT NULL,
    last_step BIGINT NOT NULL,
    created_at BIGINT NOT NULL
) {opts};

-- Backup codes: SHA-256 of each code (16 random characters, so a fast hash
-- cannot be reversed), each usable once.
CREATE TABLE twofactor_backup (
    id {id},
    user_id BIGINT NOT NULL,
    code_hash CHAR(64) NOT NULL,
    used BIGINT NOT NULL,
    created_at BIGINT NOT NULL
) {opts};
CREATE INDEX twofactor_backup_user ON twofactor_backup (user_id);

-- WebAuthn credentials. cred_hash is SHA-256 of the credential id (ids can
-- be long); passkey is the credential as webauthn-rs serialises it; counter
-- is the last signature counter seen. user_handle is the same for all of a
-- user's credentials (a random UUID, never the user id).
CREATE TABLE webauthn_keys (
    id {id},
    user_id BIGINT NOT NULL,
    user_handle CHAR(36) NOT NULL,
    name VARCHAR(255) NOT NULL,
    cred_hash CHAR(64) NOT NULL,
    passkey {text} NOT NULL,
    counter BIGINT NOT NULL,
    passwordless BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used BIGINT NOT NULL
) {opts};
CREATE UNIQUE INDEX webauthn_keys_cred ON webauthn_keys (cred_hash);
CREATE INDEX webauthn_keys_user ON webauthn_keys (user_id);
CREATE INDEX webauthn_keys_handle ON webauthn_keys (user_handle);

-- Ceremonies in progress (WebAuthn challenges, codes sent by email or SMS),
-- kept server-side so any node can finish them; found by the SHA-256 of a
-- random handle and deleted when used, so each is answered once.
CREATE TABLE mfa_challenges (
    handle_hash CHAR(64) NOT NULL PRIMARY KEY,
    user_id BIGINT NULL,
    kind VARCHAR(32) NOT NULL,
    state {text} NOT NULL,
    expires_at BIGINT NOT NULL
) {opts};
CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);

-- One-time codes by email or SMS: where to send them. enabled = 0 until the
-- user entered a first code sent there.
CREATE TABLE twofactor_contacts (
    user_id BIGINT NOT NULL,
    kind VARCHAR(16) NOT NULL,
    address VARCHAR(255) NOT NULL,
    enabled BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind)
) {opts};

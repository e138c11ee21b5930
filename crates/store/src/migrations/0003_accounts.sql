-- Account properties beyond the users row (language, phone, address, …).
CREATE TABLE account_props (
    user_id BIGINT NOT NULL,
    name VARCHAR(64) NOT NULL,
    value {text} NOT NULL,
    PRIMARY KEY (user_id, name)
) {opts};

-- Group administrators ("subadmins"): may manage the members of their groups.
CREATE TABLE group_admins (
    group_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
) {opts};
CREATE INDEX group_admins_user ON group_admins (user_id);

ALTER TABLE user_groups ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;

-- A device whose app password is marked is told to wipe itself at its next request.
ALTER TABLE app_tokens ADD COLUMN wipe BIGINT NOT NULL DEFAULT 0;

-- Milliseconds since the epoch of the last successful login (0: never).
ALTER TABLE users ADD COLUMN last_login BIGINT NOT NULL DEFAULT 0
;

-- Failed attempts per action and client subnet, for brute-force protection
-- when no shared Redis is configured. `who` is the login attempted, so a
-- success resets only that login's failures.
CREATE TABLE bruteforce_attempts (
    id {id},
    action VARCHAR(64) NOT NULL,
    subnet VARCHAR(64) NOT NULL,
    who VARCHAR(255) NOT NULL,
    occurred BIGINT NOT NULL
) {opts};
CREATE INDEX bruteforce_lookup ON bruteforce_attempts (subnet, action, occurred);

-- Web sessions are tokens too (kind 0), beside app passwords (kind 1): both
-- are listed, renamed and revoked as devices. A session is found by its
-- cookie, never by Basic authentication, and an app password never by cookie.
ALTER TABLE app_tokens ADD COLUMN kind BIGINT NOT NULL DEFAULT 1;
ALTER TABLE app_tokens ADD COLUMN remember BIGINT NOT NULL DEFAULT 0;
ALTER TABLE app_tokens ADD COLUMN csrf_secret VARCHAR(64) NULL;
ALTER TABLE app_tokens ADD COLUMN confirmed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE app_tokens ADD COLUMN last_address VARCHAR(64) NULL;
ALTER TABLE app_tokens ADD COLUMN user_agent VARCHAR(255) NULL
;

-- Messages for a user about their account (a device was wiped, …).
CREATE TABLE notifications (
    id {id},
    user_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    subject {text} NOT NULL
) {opts};
CREATE INDEX notifications_user ON notifications (user_id)

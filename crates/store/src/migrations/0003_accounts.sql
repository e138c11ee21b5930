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

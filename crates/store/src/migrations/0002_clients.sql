-- App passwords (device tokens). Only a SHA-256 of the token is stored: tokens
-- have 72 random characters, so a fast hash is enough and lookups are indexed.
CREATE TABLE app_tokens (
    id {id},
    user_id BIGINT NOT NULL,
    name VARCHAR(255) NOT NULL,
    token_hash CHAR(64) NOT NULL,
    created_at BIGINT NOT NULL,
    last_used BIGINT NOT NULL
) {opts};
CREATE UNIQUE INDEX app_tokens_hash ON app_tokens (token_hash);
CREATE INDEX app_tokens_user ON app_tokens (user_id);

-- Login Flow v2: pending grants. No secret is kept: the app password is made
-- when the client polls after the user granted access, and shown only then.
CREATE TABLE login_flows (
    id {id},
    poll_hash CHAR(64) NOT NULL,
    login_hash CHAR(64) NOT NULL,
    client_name VARCHAR(255) NOT NULL,
    created_at BIGINT NOT NULL,
    login_name VARCHAR(255) NULL,
    user_id BIGINT NULL
) {opts};
CREATE UNIQUE INDEX login_flows_poll ON login_flows (poll_hash);
CREATE UNIQUE INDEX login_flows_login ON login_flows (login_hash);

-- Chunked uploads in progress.
CREATE TABLE uploads (
    id {id},
    user_id BIGINT NOT NULL,
    name {name} NOT NULL,
    destination {text} NULL,
    total_length BIGINT NULL,
    created_at BIGINT NOT NULL,
    touched_at BIGINT NOT NULL,
    -- Set while the chunks are being assembled, so a retried MOVE waits.
    assembling_since BIGINT NULL
) {opts};
CREATE UNIQUE INDEX uploads_user_name ON uploads (user_id, name);

CREATE TABLE upload_chunks (
    upload_id BIGINT NOT NULL,
    name {name} NOT NULL,
    blob_id BIGINT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (upload_id, name)
) {opts};

-- Deleted items: the node keeps its id and moves under the owner's trash root.
CREATE TABLE trash (
    node_id BIGINT NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    original_path {text} NOT NULL,
    deleted_at BIGINT NOT NULL
) {opts};
CREATE INDEX trash_user ON trash (user_id);

-- Earlier contents of files.
CREATE TABLE versions (
    id {id},
    node_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    blob_id BIGINT NULL,
    size BIGINT NOT NULL,
    mtime BIGINT NOT NULL,
    checksum VARCHAR(512) NULL,
    created_at BIGINT NOT NULL
) {opts};
CREATE INDEX versions_node ON versions (node_id);
CREATE INDEX versions_user ON versions (user_id);

ALTER TABLE users ADD COLUMN trash_root_id BIGINT NULL

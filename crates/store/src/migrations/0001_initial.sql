-- Installation-wide settings (instance id, first-start marker, keys).
CREATE TABLE sr_meta (
    k VARCHAR(64) NOT NULL PRIMARY KEY,
    v {text} NOT NULL
) {opts};

CREATE TABLE users (
    id {id},
    uid VARCHAR(64) NOT NULL,
    -- Lower-cased uid: ids that differ only in case are the same account.
    uid_lower VARCHAR(64) NOT NULL,
    display_name VARCHAR(255) NULL,
    email VARCHAR(255) NULL,
    password_hash {text} NULL,
    enabled BIGINT NOT NULL,
    -- Bytes; -1 means unlimited.
    quota BIGINT NOT NULL,
    root_id BIGINT NULL,
    created_at BIGINT NOT NULL
) {opts};
CREATE UNIQUE INDEX users_uid_lower ON users (uid_lower);

CREATE TABLE user_groups (
    id {id},
    gid VARCHAR(64) NOT NULL,
    gid_lower VARCHAR(64) NOT NULL,
    display_name VARCHAR(255) NULL
) {opts};
CREATE UNIQUE INDEX user_groups_gid_lower ON user_groups (gid_lower);

CREATE TABLE group_members (
    group_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
) {opts};
CREATE INDEX group_members_user ON group_members (user_id);

-- Immutable content blobs; refs counts the nodes (and later versions) using one.
CREATE TABLE blobs (
    id {id},
    blob_key VARCHAR(64) NOT NULL,
    size BIGINT NOT NULL,
    refs BIGINT NOT NULL,
    created_at BIGINT NOT NULL
) {opts};
CREATE UNIQUE INDEX blobs_key ON blobs (blob_key);

-- The file tree: one row per file or folder. kind 1 = folder, 2 = file.
CREATE TABLE nodes (
    id {id},
    owner_id BIGINT NOT NULL,
    parent_id BIGINT NULL,
    name {name} NOT NULL,
    kind BIGINT NOT NULL,
    size BIGINT NOT NULL,
    mtime BIGINT NOT NULL,
    ctime BIGINT NOT NULL,
    etag VARCHAR(64) NOT NULL,
    blob_id BIGINT NULL,
    content_type VARCHAR(255) NULL,
    checksum VARCHAR(512) NULL
) {opts};
CREATE UNIQUE INDEX nodes_parent_name ON nodes (parent_id, name);
CREATE INDEX nodes_blob ON nodes (blob_id);

-- WebDAV dead properties; value is the property's inner XML, self-contained.
CREATE TABLE props (
    node_id BIGINT NOT NULL,
    ns {name} NOT NULL,
    name {name} NOT NULL,
    value {text} NOT NULL,
    PRIMARY KEY (node_id, ns, name)
) {opts};

-- WebDAV locks, on paths within one owner's tree.
CREATE TABLE locks (
    token VARCHAR(64) NOT NULL PRIMARY KEY,
    owner_id BIGINT NOT NULL,
    path {text} NOT NULL,
    deep BIGINT NOT NULL,
    shared BIGINT NOT NULL,
    holder_id BIGINT NOT NULL,
    owner_xml {text} NULL,
    timeout_secs BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
) {opts};
CREATE INDEX locks_owner ON locks (owner_id)

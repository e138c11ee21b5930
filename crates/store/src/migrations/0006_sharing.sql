-- Shares. share_type: 0 user, 1 group, 3 public link (Nextcloud's numbers).
-- owner_id owns the node; sharer_id created the share (differs for a
-- reshare, whose via_share names the share the sharer received it through,
-- so a reshare dies with it). permissions is Nextcloud's bitmask as stored;
-- the policy may mask it further when the share is used. expires_at is the
-- first second after the last valid day (UTC), NULL for none. target is the
-- name the share is mounted under in a recipient's tree.
CREATE TABLE shares (
    id {id},
    share_type BIGINT NOT NULL,
    owner_id BIGINT NOT NULL,
    sharer_id BIGINT NOT NULL,
    node_id BIGINT NOT NULL,
    recipient_user BIGINT NULL,
    recipient_group BIGINT NULL,
    via_share BIGINT NULL,
    permissions BIGINT NOT NULL,
    token VARCHAR(64) NULL,
    password_hash {text} NULL,
    expires_at BIGINT NULL,
    label VARCHAR(255) NOT NULL,
    note {text} NOT NULL,
    hide_download BIGINT NOT NULL,
    target {name} NOT NULL,
    created_at BIGINT NOT NULL
) {opts};
CREATE UNIQUE INDEX shares_token ON shares (token);
CREATE INDEX shares_node ON shares (node_id);
CREATE INDEX shares_recipient_user ON shares (recipient_user);
CREATE INDEX shares_recipient_group ON shares (recipient_group);
CREATE INDEX shares_sharer ON shares (sharer_id);
CREATE INDEX shares_owner ON shares (owner_id);

-- Members of a group share who removed it from their own tree.
CREATE TABLE share_left (
    share_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (share_id, user_id)
) {opts};

-- Files visitors put into a file drop: the name asked for, the address it
-- came from and the node it became. The uploader (same link, same address,
-- within the hour) may read back the metadata of what it sent, under the
-- name it used, as clients such as rclone do after each upload; nobody
-- learns anything about other names.
CREATE TABLE share_drops (
    id {id},
    share_id BIGINT NOT NULL,
    address VARCHAR(64) NOT NULL,
    name {name} NOT NULL,
    node_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL
) {opts};
CREATE INDEX share_drops_lookup ON share_drops (share_id, address);

-- Encryption at rest. A blob with a kek_id is encrypted: its data key is
-- wrapped by that master key (wrapped_key, hex). NULL means plaintext.
ALTER TABLE blobs ADD COLUMN kek_id VARCHAR(64) NULL;
ALTER TABLE blobs ADD COLUMN wrapped_key VARCHAR(255) NULL;
CREATE INDEX blobs_kek ON blobs (kek_id);

-- Blob files to delete once no reader can still be streaming them
-- (conversion replaces a blob's file while downloads may be running), or
-- that a conversion started and may not have committed.
CREATE TABLE blob_garbage (
    blob_key VARCHAR(64) NOT NULL PRIMARY KEY,
    delete_after BIGINT NOT NULL
) {opts};

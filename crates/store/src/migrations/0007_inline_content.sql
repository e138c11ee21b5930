-- The content of small plaintext blobs, kept in the row itself so that a
-- small upload is one transaction and one (grouped) flush of the database
-- instead of a file created, flushed and renamed and its folder flushed.
-- NULL means the content is in the blob store under blob_key (every
-- encrypted blob, every large one, and every blob written before this).
ALTER TABLE blobs ADD COLUMN content {bytes} NULL;

-- Records that every request of some kind prunes by age, in tables anyone
-- can fill: without an index on the age, each prune read the whole table.
-- An upload to a file drop deletes the drop records past their hour; a
-- login attempt deletes the brute-force records past their memory (the
-- lookup index starts with the subnet, so it does not serve that delete).
CREATE INDEX share_drops_created ON share_drops (created_at);
CREATE INDEX bruteforce_occurred ON bruteforce_attempts (occurred);

-- Favourites belong to a user, not to the file: a recipient's mark on a
-- shared file is theirs alone (they were the file's `oc:favorite` dead
-- property, which every user who saw the file shared). The marks stored so
-- far were their owners' own or set through a share; they go to the
-- owner.
CREATE TABLE favorites (
    user_id BIGINT NOT NULL,
    node_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, node_id)
) {opts};
CREATE INDEX favorites_node ON favorites (node_id);
INSERT INTO favorites (user_id, node_id)
    SELECT n.owner_id, p.node_id FROM props p JOIN nodes n ON n.id = p.node_id
    WHERE p.ns = 'http://owncloud.org/ns' AND p.name = 'favorite' AND TRIM(p.value) IN ('1', 'true');
DELETE FROM props WHERE ns = 'http://owncloud.org/ns' AND name = 'favorite';

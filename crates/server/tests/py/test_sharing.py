"""Sharing (user, group and public link shares) driven by nc_py_api, which
speaks to the OCS sharing API as it would to a real Nextcloud, and reads
the shared files back over WebDAV. The server under test is named by the
same environment variables as test_provisioning.py: SR_URL, SR_ADMIN,
SR_ADMIN_PASSWORD. Every account and group made here carries a random
suffix, so the file runs on a fresh server or next to the other files."""

import datetime
import os
import uuid

import niquests
import pytest
from nc_py_api import Nextcloud, NextcloudException, NextcloudExceptionNotFound
from nc_py_api.files import FilePermissions, ShareType

URL = os.environ["SR_URL"]
TAG = uuid.uuid4().hex[:8]

READ = int(FilePermissions.PERMISSION_READ)
UPDATE = int(FilePermissions.PERMISSION_UPDATE)
CREATE = int(FilePermissions.PERMISSION_CREATE)
DELETE = int(FilePermissions.PERMISSION_DELETE)
SHARE = int(FilePermissions.PERMISSION_SHARE)
ALL = READ | UPDATE | CREATE | DELETE | SHARE


def client(user, password):
    return Nextcloud(nextcloud_url=URL, nc_auth_user=user, nc_auth_pass=password)


@pytest.fixture(scope="module")
def admin():
    return client(os.environ["SR_ADMIN"], os.environ["SR_ADMIN_PASSWORD"])


class People:
    """Accounts made for this file; `people.client("bob")` logs in as the
    account behind the short name."""

    def __init__(self, admin):
        self.admin = admin
        self.uid = {}
        self._secret = {}
        for short in ("bob", "alice", "carol", "dave"):
            uid = f"{short}{TAG}"
            secret = f"{short}-sharing-{TAG}-passphrase"
            admin.users.create(uid, password=secret)
            self.uid[short], self._secret[short] = uid, secret
        self.group, self.group_name = f"team{TAG}", f"Team {TAG}"
        admin.users_groups.create(self.group, display_name=self.group_name)
        admin.users.add_to_group(self.uid["carol"], self.group)

    def client(self, short):
        return client(self.uid[short], self._secret[short])


@pytest.fixture(scope="module")
def people(admin):
    return People(admin)


def names(nodes):
    return {n.name for n in nodes}


def received(nc):
    return nc.files.sharing.get_list(shared_with_me=True)


def test_user_share_life_cycle(people):
    bob, alice = people.client("bob"), people.client("alice")
    assert bob.files.sharing.available
    bob.files.mkdir("reports")
    bob.files.upload("reports/q1.txt", b"first quarter figures")

    made = bob.files.sharing.create("reports", ShareType.TYPE_USER, READ | SHARE,
                                    share_with=people.uid["alice"])
    assert made.share_type == ShareType.TYPE_USER
    assert made.share_with == people.uid["alice"]
    assert made.share_owner == people.uid["bob"]
    assert made.file_owner == people.uid["bob"]
    assert made.permissions == READ | SHARE
    assert made.path == "reports"
    assert made.token == ""
    assert made.can_edit and made.can_delete

    mine = [s for s in received(alice) if s.share_id == made.share_id]
    assert len(mine) == 1, [str(s) for s in received(alice)]
    got = mine[0]
    assert got.share_type == ShareType.TYPE_USER
    assert got.share_with == people.uid["alice"]
    assert got.share_owner == people.uid["bob"]
    assert got.path == "reports"
    assert got.permissions == READ | SHARE
    assert got._raw_data["item_type"] == "folder"
    assert got.mimetype == "httpd/unix-directory"
    assert not got.can_edit

    root = alice.files.listdir()
    assert "reports" in names(root)
    folder = next(n for n in root if n.name == "reports")
    assert folder.is_dir and folder.is_shared and folder.is_readable
    assert not folder.is_creatable
    assert names(alice.files.listdir("reports")) == {"q1.txt"}
    assert alice.files.download("reports/q1.txt") == b"first quarter figures"
    with pytest.raises(NextcloudException) as e:
        alice.files.upload("reports/from-alice.txt", b"not allowed")
    assert e.value.status_code == 403, e.value
    assert names(bob.files.listdir("reports")) == {"q1.txt"}

    outgoing = [s for s in bob.files.sharing.get_list() if s.share_id == made.share_id]
    assert len(outgoing) == 1 and outgoing[0].share_with == people.uid["alice"]
    assert all(s.share_id != made.share_id for s in received(bob))
    by_id = bob.files.sharing.get_by_id(made.share_id)
    assert (by_id.share_id, by_id.path, by_id.permissions) == (made.share_id, "reports", READ | SHARE)
    assert alice.files.sharing.get_by_id(made.share_id).share_owner == people.uid["bob"]

    # A change in bob's folder reaches alice's root ETag, which sync clients poll.
    before = alice.files.listdir(depth=0, exclude_self=False)[0].etag
    bob.files.upload("reports/q2.txt", b"second quarter")
    assert alice.files.listdir(depth=0, exclude_self=False)[0].etag != before
    assert names(alice.files.listdir("reports")) == {"q1.txt", "q2.txt"}

    up = bob.files.sharing.update(made, permissions=ALL)
    assert up.permissions == ALL
    assert bob.files.sharing.get_by_id(made.share_id).permissions == ALL
    assert next(s for s in received(alice) if s.share_id == made.share_id).permissions == ALL
    alice.files.upload("reports/from-alice.txt", b"alice was here")
    assert bob.files.download("reports/from-alice.txt") == b"alice was here"
    assert names(bob.files.listdir("reports")) == {"q1.txt", "q2.txt", "from-alice.txt"}

    bob.files.sharing.delete(made)
    assert all(s.share_id != made.share_id for s in received(alice))
    assert "reports" not in names(alice.files.listdir())
    with pytest.raises(NextcloudException):
        alice.files.download("reports/q1.txt")
    with pytest.raises(NextcloudExceptionNotFound):
        bob.files.sharing.get_by_id(made.share_id)
    assert all(s.share_id != made.share_id for s in bob.files.sharing.get_list())


def test_group_share_follows_membership(people, admin):
    bob, carol, alice = people.client("bob"), people.client("carol"), people.client("alice")
    bob.files.mkdir("team-notes")
    bob.files.upload("team-notes/agenda.md", b"# agenda")

    made = bob.files.sharing.create("team-notes", ShareType.TYPE_GROUP, READ, share_with=people.group)
    assert made.share_type == ShareType.TYPE_GROUP
    assert made.share_with == people.group
    assert made.permissions == READ
    shown_as = made._raw_data["share_with_displayname"]

    seen = [s for s in received(carol) if s.share_id == made.share_id]
    assert len(seen) == 1
    assert seen[0].share_type == ShareType.TYPE_GROUP and seen[0].share_with == people.group
    assert seen[0].share_owner == people.uid["bob"] and seen[0].path == "team-notes"
    assert "team-notes" in names(carol.files.listdir())
    assert carol.files.download("team-notes/agenda.md") == b"# agenda"
    assert all(s.share_id != made.share_id for s in received(alice))
    assert "team-notes" not in names(alice.files.listdir())

    admin.users.remove_from_group(people.uid["carol"], people.group)
    try:
        assert all(s.share_id != made.share_id for s in received(carol))
        assert "team-notes" not in names(carol.files.listdir())
        with pytest.raises(NextcloudException):
            carol.files.download("team-notes/agenda.md")
        with pytest.raises(NextcloudExceptionNotFound):
            carol.files.sharing.get_by_id(made.share_id)
    finally:
        admin.users.add_to_group(people.uid["carol"], people.group)
    assert "team-notes" in names(carol.files.listdir())
    bob.files.sharing.delete(made)
    assert "team-notes" not in names(carol.files.listdir())
    # Nextcloud names the group by its display name, as it does a user.
    assert shown_as == people.group_name


def test_received_share_under_a_taken_name(people):
    bob, alice = people.client("bob"), people.client("alice")
    alice.files.mkdir("minutes")
    alice.files.upload("minutes/alice.txt", b"alice's own")
    bob.files.mkdir("minutes")
    bob.files.upload("minutes/bob.txt", b"bob's minutes")
    made = bob.files.sharing.create("minutes", ShareType.TYPE_USER, READ, share_with=people.uid["alice"])

    got = next(s for s in received(alice) if s.share_id == made.share_id)
    assert got.path != "minutes"
    assert got.path in names(alice.files.listdir())
    assert names(alice.files.listdir(got.path)) == {"bob.txt"}
    assert alice.files.download(got.path + "/bob.txt") == b"bob's minutes"
    assert names(alice.files.listdir("minutes")) == {"alice.txt"}
    target = got._raw_data["file_target"]
    bob.files.sharing.delete(made)
    assert names(alice.files.listdir("minutes")) == {"alice.txt"}
    assert got.path not in names(alice.files.listdir())
    # The share's target in the recipient's tree is where the mount is.
    assert target == "/" + got.path


def test_public_link(people):
    bob = people.client("bob")
    bob.files.mkdir("brochure")
    bob.files.upload("brochure/flyer.txt", b"come and see")
    bob.files.mkdir("other")
    ahead = datetime.datetime.now() + datetime.timedelta(days=4)

    link = bob.files.sharing.create("brochure", ShareType.TYPE_LINK, READ,
                                    password="link-secret-for-the-brochure", expire_date=ahead,
                                    label="for the fair", note="printed on Monday")
    assert link.share_type == ShareType.TYPE_LINK
    assert len(link.token) >= 8
    assert link.url.startswith(URL.rstrip("/")) and link.url.endswith("/s/" + link.token)
    assert link.expire_date.date() == ahead.date()
    assert link._raw_data["has_password"] is True
    assert "link-secret-for-the-brochure" not in str(link._raw_data)
    assert (link.label, link.note) == ("for the fair", "printed on Monday")
    assert link.path == "brochure" and link.share_owner == people.uid["bob"]
    assert not link._raw_data["hide_download"]

    # The password is asked for; the link's files are not served without it.
    page = niquests.get(link.url)
    assert page.status_code in (200, 401)
    assert b"come and see" not in (page.content or b"")
    dav = f"{URL.rstrip('/')}/public.php/dav/files/{link.token}/flyer.txt"
    assert niquests.get(dav).status_code == 401
    assert niquests.get(dav, auth=("anonymous", "not-the-link-password")).status_code == 401
    right = niquests.get(dav, auth=("anonymous", "link-secret-for-the-brochure"))
    assert right.status_code == 200 and right.content == b"come and see"

    up = bob.files.sharing.update(link, label="for the stand", note="reprinted")
    assert (up.label, up.note) == ("for the stand", "reprinted")
    assert up.token == link.token and up.expire_date.date() == ahead.date()
    # nc_py_api's update() has no hide_download keyword; the raw OCS call does it.
    raw = bob.ocs("PUT", f"/ocs/v2.php/apps/files_sharing/api/v1/shares/{link.share_id}",
                  params={"hideDownload": "true"})
    assert raw["hide_download"] in (1, True)
    again = bob.files.sharing.get_by_id(link.share_id)
    assert again._raw_data["hide_download"] in (1, True)
    assert (again.label, again.note) == ("for the stand", "reprinted")

    later = ahead + datetime.timedelta(days=3)
    assert bob.files.sharing.update(link, expire_date=later).expire_date.date() == later.date()

    second = bob.files.sharing.create("other", ShareType.TYPE_LINK, READ)
    assert second.token and second.token != link.token
    assert second.expire_date.year == 1970  # no expiry
    only = bob.files.sharing.get_list(path="brochure")
    assert [s.share_id for s in only] == [link.share_id]
    assert [s.share_id for s in bob.files.sharing.get_list(path="other")] == [second.share_id]
    ids = {s.share_id for s in bob.files.sharing.get_list()}
    assert {link.share_id, second.share_id} <= ids

    bob.files.sharing.delete(link)
    assert bob.files.sharing.get_list(path="brochure") == []
    with pytest.raises(NextcloudExceptionNotFound):
        bob.files.sharing.get_by_id(link.share_id)
    assert niquests.get(link.url).status_code == 404
    bob.files.sharing.delete(second)
    assert bob.files.sharing.get_list(path="other") == []


def test_public_upload_link(people):
    bob = people.client("bob")
    bob.files.mkdir("drop-box")
    link = bob.files.sharing.create("drop-box", ShareType.TYPE_LINK, public_upload=True)
    assert link.permissions == READ | UPDATE | CREATE | DELETE
    put = niquests.put(f"{URL.rstrip('/')}/public.php/dav/files/{link.token}/visitor.txt", data=b"hello bob")
    assert put.status_code in (201, 204)
    assert bob.files.download("drop-box/visitor.txt") == b"hello bob"
    with pytest.raises(NextcloudException) as e:
        bob.files.sharing.create("no-such-drop-box", ShareType.TYPE_LINK, public_upload=True)
    assert e.value.status_code == 404
    bob.files.upload("leaflet.txt", b"a leaflet")
    with pytest.raises(NextcloudException) as e:
        bob.files.sharing.create("leaflet.txt", ShareType.TYPE_LINK, public_upload=True)
    assert e.value.status_code == 400
    bob.files.sharing.delete(link)


def test_public_link_without_password_serves_the_file(people):
    bob = people.client("bob")
    bob.files.upload("open-letter.txt", b"dear all")
    link = bob.files.sharing.create("open-letter.txt", ShareType.TYPE_LINK)
    assert link._raw_data["item_type"] == "file"
    assert link.permissions & READ
    assert not link._raw_data.get("has_password")
    body = niquests.get(f"{URL.rstrip('/')}/public.php/dav/files/{link.token}")
    assert body.status_code == 200 and body.content == b"dear all"
    bob.files.sharing.delete(link)
    gone = niquests.get(f"{URL.rstrip('/')}/public.php/dav/files/{link.token}")
    assert gone.status_code in (401, 404)


def test_refusals_as_nc_py_api_sees_them(people):
    bob, alice, dave = people.client("bob"), people.client("alice"), people.client("dave")
    bob.files.mkdir("ledger")
    bob.files.upload("ledger/2024.csv", b"a,b\n1,2\n")

    with pytest.raises(NextcloudExceptionNotFound):
        bob.files.sharing.create("no-such-folder", ShareType.TYPE_USER, READ,
                                 share_with=people.uid["alice"])
    with pytest.raises(NextcloudExceptionNotFound):
        bob.files.sharing.create("ledger", ShareType.TYPE_USER, READ, share_with=f"nobody{TAG}")
    with pytest.raises(NextcloudException) as e:
        bob.files.sharing.create("ledger", ShareType.TYPE_USER, READ, share_with=people.uid["bob"])
    assert e.value.status_code == 403
    with pytest.raises(NextcloudExceptionNotFound):
        bob.files.sharing.get_by_id(987654321)
    with pytest.raises(NextcloudExceptionNotFound):
        bob.files.sharing.update(987654321, note="nothing there")
    with pytest.raises(NextcloudExceptionNotFound):
        bob.files.sharing.delete(987654321)
    with pytest.raises(NextcloudExceptionNotFound):
        bob.files.sharing.create("ledger", ShareType.TYPE_GROUP, READ, share_with=f"nogroup{TAG}")
    with pytest.raises(NextcloudExceptionNotFound):
        bob.files.sharing.get_list(path="no-such-folder")
    with pytest.raises(NextcloudExceptionNotFound):
        bob.files.sharing.create("ledger", ShareType.TYPE_LINK,
                                 expire_date=datetime.datetime.now() - datetime.timedelta(days=2))
    with pytest.raises(NextcloudException) as e:
        bob.files.sharing.create("/", ShareType.TYPE_USER, READ, share_with=people.uid["alice"])
    assert e.value.status_code == 403
    assert all(s.path != "ledger" for s in bob.files.sharing.get_list())

    # alice receives read+share and passes it on; she cannot hand out more.
    made = bob.files.sharing.create("ledger", ShareType.TYPE_USER, READ | SHARE,
                                    share_with=people.uid["alice"])
    with pytest.raises(NextcloudExceptionNotFound) as e:
        alice.files.sharing.create("ledger", ShareType.TYPE_USER, ALL, share_with=people.uid["dave"])
    assert "increase permissions" in e.value.reason
    with pytest.raises(NextcloudExceptionNotFound):
        alice.files.sharing.create("ledger", ShareType.TYPE_LINK, public_upload=True)
    assert "ledger" not in names(dave.files.listdir())
    reshare = alice.files.sharing.create("ledger", ShareType.TYPE_USER, READ,
                                         share_with=people.uid["dave"])
    assert reshare.share_owner == people.uid["alice"]
    assert reshare.file_owner == people.uid["bob"]
    assert reshare.permissions == READ
    assert dave.files.download("ledger/2024.csv") == b"a,b\n1,2\n"
    with pytest.raises(NextcloudExceptionNotFound) as e:
        alice.files.sharing.update(reshare, permissions=READ | UPDATE | CREATE)
    assert "increase permissions" in e.value.reason
    assert alice.files.sharing.get_by_id(reshare.share_id).permissions == READ
    with pytest.raises(NextcloudException) as e:
        dave.files.upload("ledger/dave.csv", b"x")
    assert e.value.status_code == 403

    # Someone who only received a share cannot change it.
    with pytest.raises(NextcloudException) as e:
        alice.files.sharing.update(made, permissions=ALL)
    assert e.value.status_code == 403
    assert bob.files.sharing.get_by_id(made.share_id).permissions == READ | SHARE
    # A user the share does not concern does not see it at all.
    with pytest.raises(NextcloudExceptionNotFound):
        dave.files.sharing.get_by_id(made.share_id)

    # Taking bob's share away takes the reshare that hung from it too.
    bob.files.sharing.delete(made)
    assert "ledger" not in names(dave.files.listdir())
    assert all(s.path != "ledger" for s in received(dave))


def test_inherited_shares(people):
    bob, alice = people.client("bob"), people.client("alice")
    bob.files.makedirs("projects/apollo/drafts")
    bob.files.upload("projects/apollo/drafts/plan.txt", b"step one")
    made = bob.files.sharing.create("projects", ShareType.TYPE_USER, READ, share_with=people.uid["alice"])
    own = bob.files.sharing.create("projects/apollo/drafts", ShareType.TYPE_LINK, READ)

    inherited = bob.files.sharing.get_inherited("projects/apollo/drafts")
    assert [s.share_id for s in inherited] == [made.share_id]
    assert inherited[0].path == "projects" and inherited[0].share_with == people.uid["alice"]
    assert [s.share_id for s in bob.files.sharing.get_inherited("projects/apollo")] == [made.share_id]
    assert bob.files.sharing.get_inherited("projects") == []

    below = bob.files.sharing.get_list(path="projects/apollo", subfiles=True)
    assert [s.share_id for s in below] == [own.share_id]

    assert alice.files.download("projects/apollo/drafts/plan.txt") == b"step one"
    bob.files.sharing.delete(own)
    bob.files.sharing.delete(made)
    assert bob.files.sharing.get_inherited("projects/apollo/drafts") == []


def test_leaving_and_rejoining_shares(people):
    bob, alice, carol = people.client("bob"), people.client("alice"), people.client("carol")
    bob.files.mkdir("recipes")
    bob.files.upload("recipes/bread.txt", b"flour, water, salt")

    # A user share the recipient leaves is gone, as in Nextcloud.
    direct = bob.files.sharing.create("recipes", ShareType.TYPE_USER, READ, share_with=people.uid["alice"])
    assert alice.files.sharing.get_pending() == []
    alice.files.sharing.delete(direct.share_id)
    assert "recipes" not in names(alice.files.listdir())
    assert all(s.share_id != direct.share_id for s in received(alice))
    assert alice.files.sharing.get_deleted() == []
    with pytest.raises(NextcloudExceptionNotFound):
        bob.files.sharing.get_by_id(direct.share_id)

    # A group share a member leaves stays for the others and can be taken back.
    shared = bob.files.sharing.create("recipes", ShareType.TYPE_GROUP, READ, share_with=people.group)
    assert carol.files.sharing.get_pending() == []
    assert carol.files.sharing.get_deleted() == []
    carol.files.sharing.delete(shared.share_id)
    assert "recipes" not in names(carol.files.listdir())
    assert all(s.share_id != shared.share_id for s in received(carol))
    assert bob.files.sharing.get_by_id(shared.share_id).share_with == people.group

    left = carol.files.sharing.get_deleted()
    assert [s.share_id for s in left] == [shared.share_id]
    assert left[0].share_owner == people.uid["bob"] and left[0].share_type == ShareType.TYPE_GROUP
    carol.files.sharing.undelete(left[0])
    assert carol.files.sharing.get_deleted() == []
    assert "recipes" in names(carol.files.listdir())
    assert carol.files.download("recipes/bread.txt") == b"flour, water, salt"
    with pytest.raises(NextcloudExceptionNotFound):
        carol.files.sharing.undelete(shared.share_id)
    bob.files.sharing.delete(shared)
    assert "recipes" not in names(carol.files.listdir())

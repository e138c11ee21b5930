"""Trash, versions and favourites driven by nc_py_api, which lists them as
it would on a real Nextcloud: every entry of a trash listing with a file id
is taken for a deleted item, every entry of a versions listing with an ETag
for a version, and favourites come from a REPORT. The server under test is named by SR_URL, SR_ADMIN and
SR_ADMIN_PASSWORD, as for test_provisioning.py."""

import os
import time
import uuid

from nc_py_api import Nextcloud

URL = os.environ["SR_URL"]
TAG = uuid.uuid4().hex[:8]


def admin():
    return Nextcloud(
        nextcloud_url=URL,
        nc_auth_user=os.environ["SR_ADMIN"],
        nc_auth_pass=os.environ["SR_ADMIN_PASSWORD"],
    )


def test_the_trash_lists_deleted_items_only_and_restores_them():
    nc = admin()
    name = f"trashed-{TAG}.txt"
    nc.files.upload(name, b"gone for a while")
    nc.files.delete(name)
    items = nc.files.trashbin_list()
    assert all(i.info.trashbin_filename for i in items), [i.user_path for i in items]
    mine = [i for i in items if i.info.trashbin_filename == name]
    assert len(mine) == 1, [i.user_path for i in items]
    nc.files.trashbin_restore(mine[0])
    assert nc.files.download(name) == b"gone for a while"
    assert not [i for i in nc.files.trashbin_list() if i.info.trashbin_filename == name]


def test_versions_list_earlier_contents_and_restore_one():
    nc = admin()
    name = f"versioned-{TAG}.txt"
    nc.files.upload(name, b"first")
    time.sleep(1.1)
    nc.files.upload(name, b"second")
    versions = nc.files.get_versions(nc.files.by_path(name))
    assert versions and all(v.info.is_version for v in versions), versions
    oldest = min(versions, key=lambda v: v.info.last_modified)
    nc.files.restore_version(oldest)
    assert nc.files.download(name) == b"first"


def test_favourites_are_listed_by_criteria():
    nc = admin()
    starred, plain = f"starred-{TAG}.txt", f"plain-{TAG}.txt"
    nc.files.upload(starred, b"star")
    nc.files.upload(plain, b"plain")
    nc.files.setfav(starred, True)
    found = [n.name for n in nc.files.list_by_criteria(["favorite"])]
    assert starred in found and plain not in found, found
    nc.files.setfav(starred, False)
    assert starred not in [n.name for n in nc.files.list_by_criteria(["favorite"])]

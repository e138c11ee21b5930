"""Account and group provisioning driven by nc_py_api, a client written
against the real Nextcloud. The server under test is named by environment
variables set by the Rust test that starts it (tests/it/nc_py_api.rs):
SR_URL, SR_ADMIN, SR_ADMIN_PASSWORD."""

import os

import pytest
from nc_py_api import Nextcloud, NextcloudException, NextcloudExceptionNotFound

URL = os.environ["SR_URL"]


def client(user, password):
    return Nextcloud(nextcloud_url=URL, nc_auth_user=user, nc_auth_pass=password)


@pytest.fixture(scope="module")
def admin():
    return client(os.environ["SR_ADMIN"], os.environ["SR_ADMIN_PASSWORD"])


def test_user_life_cycle(admin):
    admin.users.create("dora", display_name="Dora Explorer", password="dora-strong-passphrase",
                       email="dora@example.org", quota="5 GB", language="de")
    assert "dora" in admin.users.get_list("dor")
    info = admin.users.get_user("dora")
    assert info.display_name == "Dora Explorer"
    assert info.email == "dora@example.org"
    assert info.quota["quota"] == 5 * 1024 ** 3
    assert info.language == "de"
    assert info.enabled

    admin.users.edit("dora", displayname="Dora D.", email="d@example.org", phone="+49 30 1234567",
                     address="Somewhere 1", website="https://dora.example.org", quota="1 GB")
    info = admin.users.get_user("dora")
    assert (info.display_name, info.email, info.phone) == ("Dora D.", "d@example.org", "+49 30 1234567")
    assert info.address == "Somewhere 1" and info.website == "https://dora.example.org"
    assert info.quota["quota"] == 1024 ** 3

    own = client("dora", "dora-strong-passphrase")
    assert own.users.get_user().user_id == "dora"
    admin.users.disable("dora")
    assert not admin.users.get_user("dora").enabled
    with pytest.raises(NextcloudException) as e:
        client("dora", "dora-strong-passphrase").users.get_user()
    assert e.value.status_code == 401
    admin.users.enable("dora")
    assert client("dora", "dora-strong-passphrase").users.get_user().user_id == "dora"

    admin.users.delete("dora")
    assert "dora" not in admin.users.get_list()
    with pytest.raises(NextcloudExceptionNotFound):
        admin.users.get_user("dora")


def test_paging_and_search(admin):
    for i in range(5):
        admin.users.create(f"page{i}", password="a-long-enough-password")
    assert admin.users.get_list("page") == [f"page{i}" for i in range(5)]
    assert admin.users.get_list("page", limit=2, offset=1) == ["page1", "page2"]


def test_errors_surface_as_nextcloud_exceptions(admin):
    admin.users.create("erin", password="erins-long-passphrase")
    with pytest.raises(NextcloudException) as e:
        admin.users.create("ERIN", password="another-long-passphrase")
    assert e.value.status_code == 102
    for bad in ("bad/id", "x" * 65, "a\u00e9", ""):
        with pytest.raises(NextcloudException) as e:
            admin.users.create(bad, password="a-long-enough-password")
        assert e.value.status_code == 101, bad
    with pytest.raises(NextcloudException) as e:
        admin.users.create("frank", password="short")
    assert e.value.status_code == 107 and "10 characters" in e.value.reason
    with pytest.raises(NextcloudException) as e:
        admin.users.create("frank", password="Password123")
    assert e.value.status_code == 107 and "common" in e.value.reason
    with pytest.raises(NextcloudException) as e:
        admin.users.create("frank", password="frank-long-passphrase", quota="a lot")
    assert e.value.status_code == 102
    with pytest.raises(NextcloudException) as e:
        admin.users.create("frank", password="frank-long-passphrase", email="not-an-email")
    assert e.value.status_code == 101
    assert "frank" not in admin.users.get_list("frank")
    with pytest.raises(NextcloudException) as e:
        admin.users.edit("erin", quota="twelve")
    assert e.value.status_code == 102
    with pytest.raises(NextcloudException) as e:
        admin.users.edit("erin", email="nope")
    assert e.value.status_code == 101
    with pytest.raises(NextcloudException) as e:
        admin.users.edit("erin", displayname="x" * 300)
    assert e.value.status_code == 101
    with pytest.raises(NextcloudException) as e:
        admin.users.edit("erin", favourite_colour="blue")
    assert e.value.status_code == 113
    with pytest.raises(NextcloudException) as e:
        admin.users.edit("erin", password="erin")
    assert e.value.status_code == 107
    assert admin.users.get_user("erin").quota["quota"] == -3
    with pytest.raises(NextcloudExceptionNotFound):
        admin.users.delete("nobody-here")


def test_groups_and_group_admins(admin):
    admin.users_groups.create("sales", display_name="Sales team")
    admin.users_groups.create("tech")
    assert {"sales", "tech", "admin"} <= set(admin.users_groups.get_list())
    details = {g.group_id: g for g in admin.users_groups.get_details("sales")}
    assert details["sales"].display_name == "Sales team"
    admin.users_groups.edit("sales", display_name="Sales")
    assert admin.users_groups.get_details("sales")[0].display_name == "Sales"

    admin.users.create("gina", password="ginas-long-passphrase", groups=["sales"])
    admin.users.create("hal", password="hals-long-passphrase", groups=["sales"])
    admin.users.create("ivy", password="ivys-long-passphrase", groups=["tech"])
    assert admin.users_groups.get_members("sales") == ["gina", "hal"]
    admin.users.promote_to_subadmin("gina", "sales")
    assert admin.users_groups.get_subadmins("sales") == ["gina"]
    assert admin.users.get_user("gina").subadmin == ["sales"]

    gina = client("gina", "ginas-long-passphrase")
    # What a group admin can do: manage the members of her group.
    assert set(gina.users.get_list()) == {"gina", "hal"}
    gina.users.edit("hal", displayname="Hal 9000")
    gina.users.disable("hal")
    gina.users.enable("hal")
    gina.users.create("jo", password="jos-long-passphrase", groups=["sales"])
    assert "jo" in admin.users_groups.get_members("sales")
    gina.users.delete("jo")

    # What she cannot do.
    with pytest.raises(NextcloudExceptionNotFound):
        gina.users.edit("ivy", displayname="nope")
    with pytest.raises(NextcloudExceptionNotFound):
        gina.users.get_user("ivy")
    with pytest.raises(NextcloudExceptionNotFound):
        gina.users.get_user("admin")
    with pytest.raises(NextcloudException) as e:
        gina.users.create("kim", password="kims-long-passphrase", groups=["tech"])
    assert e.value.status_code == 105
    with pytest.raises(NextcloudException) as e:
        gina.users.create("kim", password="kims-long-passphrase")
    assert e.value.status_code == 106
    with pytest.raises(NextcloudException) as e:
        gina.users.add_to_group("hal", "admin")
    assert e.value.status_code == 104
    with pytest.raises(NextcloudException) as e:
        gina.users.promote_to_subadmin("hal", "sales")
    assert e.value.status_code == 403
    with pytest.raises(NextcloudException) as e:
        gina.users_groups.create("gina-group")
    assert e.value.status_code == 403
    with pytest.raises(NextcloudException) as e:
        gina.users.remove_from_group("hal", "sales")
    assert e.value.status_code == 105, "hal's last group she administers"
    assert "ivy" not in admin.users_groups.get_members("sales")
    assert admin.users.get_user("ivy").display_name == "ivy"

    admin.users.demote_from_subadmin("gina", "sales")
    assert admin.users_groups.get_subadmins("sales") == []
    admin.users.remove_from_group("hal", "sales")
    assert admin.users_groups.get_members("sales") == ["gina"]
    admin.users_groups.delete("tech")
    assert "tech" not in admin.users_groups.get_list()
    with pytest.raises(NextcloudException) as e:
        admin.users_groups.delete("admin")
    assert e.value.status_code == 102


def test_wipe_marks_every_device(admin):
    admin.users.create("lena", password="lenas-long-passphrase")
    admin.users.wipe("lena")

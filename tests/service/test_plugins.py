"""Plugin hooks (pluggy): a plugin listed in `[plugins] modules` links mail by its own rule,
adds its own tags and sees every committed event; a module that cannot be imported is a
configuration error at start."""

from __future__ import annotations

from typing import Any

import pytest

from service.app import create_app
from service.errors import ConfigError
from service.settings import Settings
from tests.conftest import Kirjuri, make_mail, until
from tests.plugins import kirjuri_test_plugin as plugin

MODULE = "tests.plugins.kirjuri_test_plugin"


async def test_each_hook_is_called(kirjuri_factory: Any, settings: Settings) -> None:
    plugin.EVENTS.clear()
    kirjuri: Kirjuri = await kirjuri_factory(settings.replace("plugins", modules=[MODULE]))
    agent = await kirjuri.login("agent")
    resp = await kirjuri.client.post(
        "/api/v1/customers", json={"name": "Laskukassa-asiakas Oy"}, headers=agent
    )
    cid = (await resp.json())["id"]

    code, text = await kirjuri.send(
        make_mail(sender="tuntematon@example.org", subject=f"Tilaus ASIAKAS-{cid}")
    )
    assert code == 250
    iid = int(text.rsplit(" ", 1)[1])
    detail = await kirjuri.get_json(f"/api/v1/interactions/{iid}", agent)
    assert detail["customer_id"] == cid and detail["link_method"] == "plugin"  # match_customer
    tags = [t for t in detail["tags"] if t["kind"] == "crm_reference"]
    assert [t["data"] for t in tags] == [{"ref": f"ASIAKAS-{cid}"}]  # extra_tags

    await until(
        lambda: any(e["type"] == "interaction.created" for e in plugin.EVENTS),
        limit=5,
        what="the plugin to hear of the new interaction",
    )
    created = next(e for e in plugin.EVENTS if e["type"] == "interaction.created")  # on_event
    assert created["data"]["interaction_id"] == iid and created["data"]["customer_id"] == cid

    # a reference to a customer that does not exist links nothing
    code, text = await kirjuri.send(make_mail(sender="tuntematon@example.org", subject="Tilaus ASIAKAS-999"))
    detail = await kirjuri.get_json(f"/api/v1/interactions/{int(text.rsplit(' ', 1)[1])}", agent)
    assert detail["customer_id"] is None


def test_a_plugin_that_cannot_be_imported_is_a_config_error(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="no_such_plugin"):
        create_app(settings.replace("plugins", modules=["no_such_plugin"]))

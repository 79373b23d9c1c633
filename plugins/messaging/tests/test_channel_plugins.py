"""Channel types other plugins add (``messaging_channel_types``) and ``messaging_message_sent``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import crmcore_messaging.plugin
import pytest
from crmcore_messaging import delivery
from crmcore_messaging.channels.base import ChannelType, Outgoing, TemporaryFailure

from crmcore import CRM, ConfigError
from crmcore.hooks import hookimpl

from .conftest import add_customer, queue_text, stored_messages

#: What the pigeon channel carried, across instances (one is built per batch).
CARRIED: list[tuple[str, str]] = []


class PigeonChannel(ChannelType):
    """A channel type of another plugin: carries the text to an attribute address."""

    type_name: ClassVar[str] = "pigeon"
    default_address: ClassVar[str] = "customer"
    interaction_channel: ClassVar[str] = "other"
    interaction_kind: ClassVar[str] = "note"
    options: ClassVar[tuple[str, ...]] = ("loft", "tired")
    required: ClassVar[tuple[str, ...]] = ("loft",)

    def __init__(
        self, name: str, options: Mapping[str, Any], *, address: str | None = None
    ) -> None:
        super().__init__(name, options, address=address)
        if not str(options["loft"]).strip():
            raise self.option_error("loft", "must not be empty")

    def send(self, message: Outgoing) -> str | None:
        """Carry it, or be too tired (a temporary failure)."""
        if self.settings.get("tired"):
            raise TemporaryFailure("the pigeon is tired", reason="tired")
        CARRIED.append((message.recipient, message.text))
        return f"pigeon-{len(CARRIED)}"


class Loft:
    """A plugin adding the pigeon type and listening to sent messages."""

    crm_plugin_name = "loft"

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Mapping[str, Any]] = []
        self.fail = fail

    @hookimpl(optionalhook=True)
    def messaging_channel_types(self) -> Mapping[str, type]:
        """The pigeon."""
        return {"pigeon": PigeonChannel}

    @hookimpl(optionalhook=True)
    def messaging_message_sent(self, ctx: Any, messages: Sequence[Mapping[str, Any]]) -> None:
        """Remember what was sent (or fail, to show the messages stay sent)."""
        self.sent.extend(messages)
        if self.fail:
            raise RuntimeError("the listener broke")


def _open(factory: Callable[..., CRM], plugin: Loft, **channel: Any) -> CRM:
    section = {
        "caps": [],
        "channels": {"pigeon": {"type": "pigeon", "address_attribute": "loft", **channel}},
    }
    return factory(
        plugins=[crmcore_messaging.plugin, plugin], plugin_sections={"messaging": section}
    )


@pytest.mark.parametrize("fail", [False, True])
def test_a_plugins_channel_type_sends_and_the_sent_hook_hears(
    crm_factory: Callable[..., CRM], fail: bool
) -> None:
    CARRIED.clear()
    loft = Loft(fail=fail)
    crm = _open(crm_factory, loft, loft="north")
    wei = add_customer(crm, "Wei", attributes={"loft": "loft-7"})
    queued = queue_text(crm, wei, text="coo")
    report = delivery.send_pending(crm)
    assert report.sent == 1
    assert CARRIED == [("loft-7", "coo")]
    (row,) = stored_messages(crm)
    assert (row.state, row.provider_id) == ("sent", "pigeon-1")  # a failing listener: still sent
    assert [(m["message_id"], m["customer_id"], m["channel"]) for m in loft.sent] == [
        (queued.message_id, wei, "pigeon")
    ]
    (interaction,) = crm.interactions.list(customer_id=wei).items
    assert (interaction.kind, interaction.channel) == ("note", "other")


def test_a_plugins_channel_type_may_fail_temporarily(crm_factory: Callable[..., CRM]) -> None:
    crm = _open(crm_factory, Loft(), loft="north", tired=True)
    wei = add_customer(crm, "Wei", attributes={"loft": "loft-7"})
    queue_text(crm, wei)
    assert delivery.send_pending(crm).retried == 1
    assert [(r.state, r.reason) for r in stored_messages(crm)] == [("queued", "tired")]


def test_bad_plugin_channel_configuration(crm_factory: Callable[..., CRM]) -> None:
    with pytest.raises(ConfigError, match=r"pigeon\.loft: must not be empty"):
        _open(crm_factory, Loft(), loft=" ")
    with pytest.raises(ConfigError, match="option 'loft' is required"):
        _open(crm_factory, Loft())

    class Broken(Loft):
        crm_plugin_name = "broken"

        @hookimpl(optionalhook=True)
        def messaging_channel_types(self) -> Mapping[str, type]:
            return {"pigeon": dict}

    with pytest.raises(ConfigError, match="not a ChannelType subclass"):
        _open(crm_factory, Broken(), loft="north")

    class Odd(PigeonChannel):
        interaction_kind: ClassVar[str] = "telepathy"

    class OddLoft(Loft):
        crm_plugin_name = "odd"

        @hookimpl(optionalhook=True)
        def messaging_channel_types(self) -> Mapping[str, type]:
            return {"pigeon": Odd}

    with pytest.raises(ConfigError, match="'telepathy' is not one of core's interaction kinds"):
        _open(crm_factory, OddLoft(), loft="north")


class MeanwhileChannel(ChannelType):
    """A channel during whose send something else happens (``MEANWHILE``), then it delivers."""

    type_name: ClassVar[str] = "meanwhile"
    default_address: ClassVar[str] = "customer"

    def send(self, message: Outgoing) -> str | None:
        """Run what happens meanwhile, then deliver."""
        MEANWHILE.pop()()
        return None


MEANWHILE: list[Callable[[], Any]] = []


class Meanwhile:
    """A plugin adding the ``meanwhile`` type."""

    crm_plugin_name = "meanwhile"

    @hookimpl(optionalhook=True)
    def messaging_channel_types(self) -> Mapping[str, type]:
        """The channel."""
        return {"meanwhile": MeanwhileChannel}


def test_a_merge_or_an_erasure_while_sending(crm_factory: Callable[..., CRM]) -> None:
    section = {"caps": [], "channels": {"m": {"type": "meanwhile"}}}
    crm = crm_factory(
        plugins=[crmcore_messaging.plugin, Meanwhile()], plugin_sections={"messaging": section}
    )
    keep, dup, gone = (add_customer(crm, n) for n in ("Keep", "Dup", "Gone"))
    queue_text(crm, dup, text="to the duplicate")
    MEANWHILE.append(lambda: crm.customers.merge(keep, dup))
    assert delivery.send_pending(crm).sent == 1
    (row,) = stored_messages(crm)
    (interaction,) = crm.interactions.list(customer_id=keep).items
    assert (row.customer_id, row.interaction_id) == (keep, interaction.id)
    queue_text(crm, gone, text="to the erased")
    MEANWHILE.append(lambda: crm.customers.erase(gone))
    assert delivery.send_pending(crm).sent == 1
    assert crm.interactions.list(customer_id=gone).items == []
    assert [r.body_text for r in stored_messages(crm) if r.customer_id == gone] == [None]

"""The parts of a desktop session Ferry's tray and notifications talk to, on the session bus:
a StatusNotifier host (`org.kde.StatusNotifierWatcher`, where tray icons register) and a
notification daemon (`org.freedesktop.Notifications`). Writes what it sees into DIR
(ARGV[1]): `ready` once both names are owned; `notifications.jsonl`, one line per
notification; `tray.json`, every 200 ms, each registered item's title, label (the text shown
beside the icon), status and menu labels.
A line "click LABEL" appended to DIR/commands clicks that menu item.
"""

import asyncio
import json
import os
import sys
import time

from dbus_next import Variant
from dbus_next.aio import MessageBus
from dbus_next.service import ServiceInterface, dbus_property, method, signal
from dbus_next.constants import PropertyAccess

OUT = sys.argv[1]


class Watcher(ServiceInterface):
    def __init__(self):
        super().__init__("org.kde.StatusNotifierWatcher")
        self.items = []

    @method()
    def RegisterStatusNotifierItem(self, service: "s"):
        # (Recorded with its sender by `registered`: an item may give only its object path.)
        self.StatusNotifierItemRegistered(service)

    @method()
    def RegisterStatusNotifierHost(self, service: "s"):
        pass

    @signal()
    def StatusNotifierItemRegistered(self, service) -> "s":
        return service

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> "as":
        return self.items

    @dbus_property(access=PropertyAccess.READ)
    def IsStatusNotifierHostRegistered(self) -> "b":
        return True

    @dbus_property(access=PropertyAccess.READ)
    def ProtocolVersion(self) -> "i":
        return 0


class Notifications(ServiceInterface):
    def __init__(self):
        super().__init__("org.freedesktop.Notifications")
        self.next = 1

    @method()
    def Notify(self, app: "s", replaces: "u", icon: "s", summary: "s", body: "s",
               actions: "as", hints: "a{sv}", timeout: "i") -> "u":
        with open(os.path.join(OUT, "notifications.jsonl"), "a") as f:
            f.write(json.dumps({"app": app, "summary": summary, "body": body}) + "\n")
        self.next += 1
        return self.next

    @method()
    def GetCapabilities(self) -> "as":
        return ["body"]

    @method()
    def GetServerInformation(self) -> "ssss":
        return ["ferry-test-shell", "ferry", "1", "1.2"]

    @method()
    def CloseNotification(self, id: "u"):
        pass

    @signal()
    def NotificationClosed(self, id, reason) -> "uu":
        return [id, reason]


def labels(layout):
    """The labels of a dbusmenu layout (id, properties, children), with their ids."""
    _, props, children = layout
    out = []
    for child in children:
        cid, cprops, _ = child.value
        if "label" in cprops:
            out.append({"id": cid, "label": cprops["label"].value,
                        "enabled": cprops["enabled"].value if "enabled" in cprops else True})
    return out


async def item_state(bus, service):
    slash = service.find("/")
    name, path = (service, "/StatusNotifierItem") if slash < 0 else (service[:slash], service[slash:])
    intro = await bus.introspect(name, path)
    item = bus.get_proxy_object(name, path, intro)
    props = item.get_interface("org.freedesktop.DBus.Properties")
    get = lambda key: props.call_get("org.kde.StatusNotifierItem", key)
    state = {"service": service}
    # The text beside the icon: Ayatana's label (what Tauri's set_title sets on Linux).
    for key, field in [("Title", "title"), ("Status", "status"), ("Id", "id"),
                       ("XAyatanaLabel", "label")]:
        try:
            state[field] = (await get(key)).value
        except Exception:
            state[field] = None
    menu_path = (await get("Menu")).value
    mintro = await bus.introspect(name, menu_path)
    menu = bus.get_proxy_object(name, menu_path, mintro).get_interface("com.canonical.dbusmenu")
    _, layout = await menu.call_get_layout(0, -1, [])
    state["menu"] = labels(layout)
    return state, menu


async def main():
    os.makedirs(OUT, exist_ok=True)
    bus = await MessageBus().connect()
    watcher = Watcher()
    bus.export("/StatusNotifierWatcher", watcher)
    bus.export("/org/freedesktop/Notifications", Notifications())
    def registered(message):
        # `sender/path` for an item that registered by its object path (Ayatana does).
        if message.member == "RegisterStatusNotifierItem" and message.body:
            service = message.body[0]
            watcher.items.append(message.sender + service if service.startswith("/") else service)
        return None

    bus.add_message_handler(registered)
    await bus.request_name("org.kde.StatusNotifierWatcher")
    await bus.request_name("org.freedesktop.Notifications")
    open(os.path.join(OUT, "ready"), "w").close()
    done = 0
    commands = os.path.join(OUT, "commands")
    deadline = time.time() + 3600
    while time.time() < deadline:
        states, menus = [], []
        for service in list(watcher.items):
            try:
                state, menu = await item_state(bus, service)
                states.append(state)
                menus.append((state, menu))
            except Exception as err:
                states.append({"service": service, "error": str(err)})
        tmp = os.path.join(OUT, "tray.json.tmp")
        with open(tmp, "w") as f:
            json.dump(states, f)
        os.replace(tmp, os.path.join(OUT, "tray.json"))
        if os.path.exists(commands):
            with open(commands, "rb") as f:
                f.seek(done)
                pending = f.read().decode()
            # Whole lines only (one may be half written); a click whose item is not seen yet
            # waits for the next round.
            while "\n" in pending:
                line, _, rest = pending.partition("\n")
                verb, _, label = line.partition(" ")
                clicked = False
                for state, menu in menus:
                    for entry in state.get("menu", []):
                        if verb == "click" and entry["label"] == label:
                            await menu.call_event(entry["id"], "clicked", Variant("s", ""), 0)
                            clicked = True
                if not clicked:
                    print(f"not clicked yet: {line}", file=sys.stderr)
                    break
                done += len(line.encode()) + 1
                pending = rest
        await asyncio.sleep(0.2)


asyncio.run(main())

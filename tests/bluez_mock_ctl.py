#!/usr/bin/env python3
"""Drives a python3-dbusmock `bluez5` template on the bus named by DBUS_SYSTEM_BUS_ADDRESS.

Commands:
  wait                               wait until org.bluez is on the bus (10 s)
  wait-discovering NAME              wait until a client started discovery on it (15 s)
  add-adapter NAME                   e.g. hci0
  remove-adapter NAME                removes the adapter and its devices
  add-device ADAPTER MAC NAME
  adv ADAPTER MAC RSSI [svc UUID HEX]... [mfr COMPANY HEX]...
                                     sets RSSI, ServiceData and ManufacturerData with the
                                     D-Bus types BlueZ uses (a{sv}, a{qv}); emits
                                     PropertiesChanged like bluetoothd does per advertisement
The template declares ServiceData/ManufacturerData with the wrong type (aa{..}); `adv`
replaces them with correctly typed values.
"""
import sys
import time

import dbus

DEVICE_IFACE = "org.bluez.Device1"


def bus():
    return dbus.SystemBus()


def mock_main():
    return dbus.Interface(bus().get_object("org.bluez", "/"), "org.bluez.Mock")


def dev_path(adapter, mac):
    return f"/org/bluez/{adapter}/dev_" + mac.replace(":", "_").upper()


def main(argv):
    cmd = argv[1]
    if cmd == "wait":
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if bus().name_has_owner("org.bluez"):
                    return 0
            except dbus.exceptions.DBusException:
                pass
            time.sleep(0.1)
        return 1
    if cmd == "wait-discovering":
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                obj = bus().get_object("org.bluez", "/org/bluez/" + argv[2])
                props = dbus.Interface(obj, dbus.PROPERTIES_IFACE)
                if props.Get("org.bluez.Adapter1", "Discovering"):
                    return 0
            except dbus.exceptions.DBusException:
                pass
            time.sleep(0.1)
        return 1
    if cmd == "add-adapter":
        mock_main().AddAdapter(argv[2], "citygate-test")
    elif cmd == "remove-adapter":
        mock_main().RemoveAdapterWithDevices(argv[2])
    elif cmd == "add-device":
        mock_main().AddDevice(argv[2], argv[3], argv[4])
    elif cmd == "adv":
        adapter, mac, rssi = argv[2], argv[3], int(argv[4])
        svc, mfr = {}, {}
        rest = argv[5:]
        while rest:
            kind, key, data = rest[0], rest[1], bytes.fromhex(rest[2])
            value = dbus.Array(list(data), signature="y", variant_level=1)
            if kind == "svc":
                svc[dbus.String(key)] = value
            else:
                mfr[dbus.UInt16(int(key, 16))] = value
            rest = rest[3:]
        # Properties.Set stores the value and emits PropertiesChanged, one property at a
        # time like bluetoothd. (The mock's UpdateProperties cannot wrap dictionaries.)
        props = {"RSSI": dbus.Int16(rssi)}
        if svc:
            props["ServiceData"] = dbus.Dictionary(svc, signature="sv")
        if mfr:
            props["ManufacturerData"] = dbus.Dictionary(mfr, signature="qv")
        obj = bus().get_object("org.bluez", dev_path(adapter, mac))
        iface = dbus.Interface(obj, dbus.PROPERTIES_IFACE)
        for name, value in props.items():
            iface.Set(DEVICE_IFACE, name, value)
    else:
        print(f"unknown command {cmd}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Independent Modbus/TCP peer for citygate's tests: a pymodbus 3.x server with known values.

Usage: pymodbus_server.py PORT      (binds 127.0.0.1:PORT, serves until killed)

Unit 1 (any other unit id is answered with exception 04 by pymodbus):
  holding  0..1   float32 123.456 ABCD      (0x42F6 0xE979)
  holding  2..3   float32 123.456 CDAB      (0xE979 0x42F6)
  holding  4      int16   -1000             (0xFC18)
  holding  5..6   int32   100000 ABCD       (0x0001 0x86A0)
  holding  7..19  zeros; the holding block ends at 19, so reads past it get exception 02
  input    Eastron SDM630 layout: voltages L1-L3 230.1/231.2/229.8 at 0x00/02/04,
           frequency 50.0 at 0x46, import energy 1234.5 at 0x48; 0x000..0x1FF readable
  coils    0..2 = 1 0 1

pymodbus quirks (protocols.md §6/§7): ModbusSequentialDataBlock(address, …) subtracts 1, so
address 1 here is protocol address 0; over-limit reads come back as function 0x80 code 01.
"""
import asyncio
import logging
import struct
import sys

from pymodbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from pymodbus.server import StartAsyncTcpServer


def f32_abcd(v):
    hi, lo = struct.unpack(">HH", struct.pack(">f", v))
    return [hi, lo]


def main():
    port = int(sys.argv[1])
    holding = [0] * 20
    holding[0:2] = f32_abcd(123.456)
    holding[2:4] = list(reversed(f32_abcd(123.456)))
    holding[4] = struct.unpack(">H", struct.pack(">h", -1000))[0]
    holding[5:7] = [0x0001, 0x86A0]

    inputs = [0] * 0x200
    for addr, value in [(0x00, 230.1), (0x02, 231.2), (0x04, 229.8), (0x46, 50.0), (0x48, 1234.5)]:
        inputs[addr : addr + 2] = f32_abcd(value)

    device = ModbusDeviceContext(
        co=ModbusSequentialDataBlock(1, [1, 0, 1] + [0] * 13),
        di=ModbusSequentialDataBlock(1, [0] * 16),
        hr=ModbusSequentialDataBlock(1, holding),
        ir=ModbusSequentialDataBlock(1, inputs),
    )
    context = ModbusServerContext(devices={1: device})
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(StartAsyncTcpServer(context=context, address=("127.0.0.1", port)))


if __name__ == "__main__":
    main()

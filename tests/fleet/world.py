#!/usr/bin/env python3
"""Public IPv4 addresses of every country a GeoIP database knows, read from
the database itself: the fleet simulation's clients.

A small reader of the MaxMind DB format (search tree, data section,
metadata; https://maxmind.github.io/MaxMind-DB/) with nothing but the
standard library, so the simulation needs no package beyond Debian's
python3. It walks the IPv4 part of the tree down to /16, takes the network
that holds the first address of each /16, and keeps per country the largest
such network. Both schemas the exporter reads are understood: ip-location-db's
`country_code` and MaxMind's `country.iso_code` (then
`registered_country.iso_code`).

    python3 tests/fleet/world.py [DATABASE]

prints one line per country: CODE NETWORK.
"""
import ipaddress
import os
import struct
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLED = os.path.join(REPO, "data", "geo-whois-asn-country.mmdb")

_METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"
# Address ranges the exporter counts as "private" whatever the database says,
# or that are not unicast: never sampled as a country's clients.
_NOT_PUBLIC = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3")]


class Database:
    """One .mmdb file, read whole into memory."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.buf = f.read()
        start = self.buf.rfind(_METADATA_MARKER)
        if start < 0:
            raise ValueError("%s: not a MaxMind DB (no metadata marker)" % path)
        self.metadata, _ = self._decode(start + len(_METADATA_MARKER),
                                        start + len(_METADATA_MARKER))
        self.node_count = self.metadata["node_count"]
        self.record_size = self.metadata["record_size"]
        if self.record_size not in (24, 28, 32):
            raise ValueError("%s: unsupported record size %d" % (path, self.record_size))
        self.node_bytes = self.record_size // 4
        # The data section follows the tree and 16 bytes of zeros.
        self.data_start = self.node_count * self.node_bytes + 16
        self._countries = {}

    def record(self, node, bit):
        """The left (bit 0) or right (bit 1) record of a search tree node."""
        b = self.buf[node * self.node_bytes:(node + 1) * self.node_bytes]
        if self.record_size == 24:
            return int.from_bytes(b[3:6] if bit else b[0:3], "big")
        if self.record_size == 28:
            if bit:
                return ((b[3] & 0x0F) << 24) | int.from_bytes(b[4:7], "big")
            return ((b[3] & 0xF0) << 20) | int.from_bytes(b[0:3], "big")
        return int.from_bytes(b[4:8] if bit else b[0:4], "big")

    def ipv4_root(self):
        """The node of ::0.0.0.0/96, where IPv4 lookups start in an IPv6 tree."""
        node = 0
        if self.metadata["ip_version"] == 6:
            for _ in range(96):
                node = self.record(node, 0)
                if node >= self.node_count:
                    raise ValueError("no IPv4 subtree in this database")
        return node

    def country_of_record(self, record):
        """The country code of a data record (None when it has none)."""
        if record not in self._countries:
            data, _ = self._decode(self.data_start + record - self.node_count - 16,
                                   self.data_start)
            code = None
            if isinstance(data, dict):
                code = data.get("country_code")
                for key in ("country", "registered_country"):
                    if not code and isinstance(data.get(key), dict):
                        code = data[key].get("iso_code")
            self._countries[record] = code
        return self._countries[record]

    def _decode(self, offset, base):
        """(value, next offset) of the data field at `offset`; pointers are
        relative to `base`."""
        buf = self.buf
        ctrl = buf[offset]
        offset += 1
        kind = ctrl >> 5
        if kind == 1:  # pointer
            size = (ctrl >> 3) & 3
            value = ctrl & 7
            if size == 0:
                target = (value << 8) | buf[offset]
            elif size == 1:
                target = ((value << 16) | int.from_bytes(buf[offset:offset + 2], "big")) + 2048
            elif size == 2:
                target = ((value << 24) | int.from_bytes(buf[offset:offset + 3], "big")) + 526336
            else:
                target = int.from_bytes(buf[offset:offset + 4], "big")
            pointed, _ = self._decode(base + target, base)
            return pointed, offset + size + 1
        if kind == 0:  # extended type
            kind = 7 + buf[offset]
            offset += 1
        size = ctrl & 0x1F
        if size >= 29:
            extra = size - 28
            n = int.from_bytes(buf[offset:offset + extra], "big")
            size = (29, 285, 65821)[extra - 1] + n
            offset += extra
        if kind == 2:  # UTF-8 string
            return buf[offset:offset + size].decode("utf-8"), offset + size
        if kind == 3:  # double
            return struct.unpack(">d", buf[offset:offset + 8])[0], offset + 8
        if kind == 4:  # bytes
            return buf[offset:offset + size], offset + size
        if kind in (5, 6, 9, 10):  # unsigned integers
            return int.from_bytes(buf[offset:offset + size], "big"), offset + size
        if kind == 8:  # int32
            return int.from_bytes(buf[offset:offset + size], "big", signed=True), offset + size
        if kind == 7:  # map
            out = {}
            for _ in range(size):
                key, offset = self._decode(offset, base)
                out[key], offset = self._decode(offset, base)
            return out, offset
        if kind == 11:  # array
            out = []
            for _ in range(size):
                item, offset = self._decode(offset, base)
                out.append(item)
            return out, offset
        if kind == 14:  # boolean: the size is the value
            return bool(size), offset
        if kind == 15:  # float
            return struct.unpack(">f", buf[offset:offset + 4])[0], offset + 4
        raise ValueError("unsupported data type %d at %d" % (kind, offset))


def country_networks(path=BUNDLED):
    """{country code: ipaddress.IPv4Network}: for each country, the largest
    network that holds the first address of some /16 and that the database
    maps to that country."""
    db = Database(path)
    best = {}

    def leaf(record, network, prefix):
        if record <= db.node_count:  # == node_count: no data
            return
        net = ipaddress.IPv4Network((network, prefix))
        if prefix > 30 or any(net.overlaps(n) for n in _NOT_PUBLIC):
            return
        code = db.country_of_record(record)
        if code and (code not in best or prefix < best[code].prefixlen):
            best[code] = net

    def walk(node, depth, network):
        for bit in (0, 1):
            child = db.record(node, bit)
            child_network = network | (bit << (31 - depth))
            if child >= db.node_count:
                leaf(child, child_network, depth + 1)
            elif depth + 1 < 16:
                walk(child, depth + 1, child_network)
            else:
                # Below /16: follow the first address of this /16 to its leaf.
                node_, prefix = child, depth + 1
                while node_ < db.node_count and prefix < 32:
                    node_ = db.record(node_, 0)
                    prefix += 1
                leaf(node_, child_network, prefix)

    walk(db.ipv4_root(), 0, 0)
    return best


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else BUNDLED
    for code, network in sorted(country_networks(path).items()):
        print(code, network)
    return 0


if __name__ == "__main__":
    sys.exit(main())

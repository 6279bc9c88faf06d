#!/usr/bin/env python3
"""The ASN database: tools/asn_db/asn_csv_to_mmdb.pl and data/ip-location-db-asn.mmdb.

ConverterTest (fast, no network): the converter turns the hand-made CSV
files in tests/testdata/asn/ into exactly the records libmaxminddb's
mmdblookup is expected to answer, at each range's first and last address and
just outside it; IPv4-mapped addresses answer as IPv4; malformed input is
refused and leaves no file behind.

Needs mmdb-bin and libmaxmind-db-writer-perl (scripts/test installs both).
Usage: asn_db_test.py [--work-dir DIR] [--package-dir DIR] [unittest arguments]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONVERTER = os.path.join(REPO, "tools", "asn_db", "asn_csv_to_mmdb.pl")
FIXTURES = os.path.join(REPO, "tests", "testdata", "asn")
ASN = "autonomous_system_number"
ORG = "autonomous_system_organization"
# Set by main(): where npm packs the package, or an unpacked package to use.
WORK_DIR = None
PACKAGE_DIR = None


def check_tools():
    """Fails with what to install when a tool the tests run is missing."""
    if subprocess.run(["perl", "-MMaxMind::DB::Writer::Tree", "-e", "1"],
                      capture_output=True).returncode != 0:
        raise AssertionError("the Perl module MaxMind::DB::Writer is missing: "
                             "apt-get install libmaxmind-db-writer-perl")
    if subprocess.run(["sh", "-c", "command -v mmdblookup"], capture_output=True).returncode:
        raise AssertionError("mmdblookup is missing: apt-get install mmdb-bin")


def convert(ipv4_csv, ipv6_csv, output, version="test", epoch=1700000000):
    """Runs the converter; returns the finished process (not checked)."""
    return subprocess.run(["perl", CONVERTER, f"--source-version={version}",
                           f"--build-epoch={epoch}", ipv4_csv, ipv6_csv, output],
                          capture_output=True, text=True)


# One "key": value <type> pair of mmdblookup's output for a flat map. Strings
# are printed between quotes without escaping, so the value is everything up
# to the type.
LOOKUP_PAIR = re.compile(r'^\s*"([^"]+)":\s*\n\s*(.*) <(\w+)>$', re.MULTILINE)


def parse_lookup(text):
    """mmdblookup's record as {key: (value, type)}; strings without quotes."""
    record = {}
    for key, value, kind in LOOKUP_PAIR.findall(text):
        if kind == "utf8_string":
            value = value[1:-1]
        elif kind.startswith("uint"):
            value = int(value)
        record[key] = (value, kind)
    return record


def lookup(database, address):
    """The record mmdblookup finds for an address, or None when it has none."""
    result = subprocess.run(["mmdblookup", "--file", database, "--ip", address],
                            capture_output=True, text=True)
    if "Could not find an entry" in result.stderr:
        return None
    if result.returncode != 0:
        raise AssertionError(f"mmdblookup {address}: {result.returncode} {result.stderr}")
    return parse_lookup(result.stdout)


def metadata(database):
    """mmdblookup -v's metadata fields, as {name: text}."""
    result = subprocess.run(["mmdblookup", "--file", database, "--ip", "0.0.0.0", "-v"],
                            capture_output=True, text=True)
    fields = dict(re.findall(r"^ {4}([A-Z][\w ]+):\s+(.*)$", result.stdout, re.MULTILINE))
    match = re.search(r"^ {6}en:\s+(.*)$", result.stdout, re.MULTILINE)
    if match:
        fields["Description"] = match.group(1)
    return fields


def record(asn, organization=None):
    """The record the converter writes for a row, in parse_lookup's form."""
    fields = {ASN: (asn, "uint32")}
    if organization:
        fields[ORG] = (organization, "utf8_string")
    return fields


class ConverterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        check_tools()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.database = os.path.join(cls.tmp.name, "asn.mmdb")
        cls.result = convert(os.path.join(FIXTURES, "asn-ipv4.csv"),
                             os.path.join(FIXTURES, "asn-ipv6.csv"), cls.database)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_converts(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        self.assertIn("ipv4: 11 rows, 10 ranges inserted, 1 joined to the row before, "
                      "1 overlapping an earlier row, 0 cut by aliased networks",
                      self.result.stdout)
        self.assertIn("ipv6: 5 rows, 4 ranges inserted, 0 joined to the row before, "
                      "0 overlapping an earlier row, 2 cut by aliased networks",
                      self.result.stdout)
        self.assertIn("asn-ipv4.csv:8: 3.0.0.128-3.0.1.255 overlaps an earlier row",
                      self.result.stderr)
        self.assertFalse(os.path.exists(self.database + ".tmp"))

    def test_metadata(self):
        fields = metadata(self.database)
        self.assertEqual(fields["Type"], "ip-location-db-asn")
        self.assertEqual(fields["IP version"], "IPv6")
        self.assertEqual(fields["Record size"], "24 bits")
        self.assertTrue(fields["Build epoch"].startswith("1700000000 "), fields)
        self.assertIn("@ip-location-db/asn test", fields["Description"])
        self.assertIn("CC BY 4.0", fields["Description"])

    def test_ipv4_records(self):
        cloudflare = record(13335, "Cloudflare, Inc.")
        unaligned = record(64496, "Unaligned Example Networks")
        quoted = record(64497, 'LLC "QUOTED", Example')
        zurich = record(64498, "Zürich Ünited Netz \u00ad ME")
        next_door = record(64499, "Next Door Example")
        overlapped = record(64500, "Overlapped Example")
        overlapping = record(64501, "Overlapping Example")
        top = record(4294967294, "Top Of The IPv4 Space")
        expected = [
            ("0.255.255.255", None), ("1.0.0.0", cloudflare), ("1.0.0.255", cloudflare),
            ("1.0.1.0", None),
            # Not aligned to any prefix, and joined to the next row.
            ("1.0.4.2", None), ("1.0.4.3", unaligned), ("1.0.7.200", unaligned),
            ("1.0.7.201", unaligned), ("1.0.7.255", unaligned),
            # Doubled quotes and a comma inside the quoted organization.
            ("1.0.8.0", quoted), ("1.0.8.9", quoted), ("1.0.8.10", None),
            # UTF-8, with a soft hyphen as in the real data.
            ("1.255.255.255", None), ("2.0.0.0", zurich), ("2.0.0.127", zurich),
            ("2.0.0.128", next_door), ("2.0.1.0", next_door), ("2.0.1.1", None),
            # The later of two overlapping rows wins the overlap.
            ("3.0.0.0", overlapped), ("3.0.0.127", overlapped), ("3.0.0.128", overlapping),
            ("3.0.0.255", overlapping), ("3.0.1.255", overlapping), ("3.0.2.0", None),
            # A single address with no organization: the key is left out.
            ("4.255.255.255", None), ("5.0.0.0", record(64502)), ("5.0.0.1", None),
            # Reserved networks are kept as published.
            ("10.0.0.0", record(64503, "Private Space Kept As Published")),
            ("10.0.1.0", None),
            ("255.255.254.255", None), ("255.255.255.0", top), ("255.255.255.255", top),
        ]
        for address, want in expected:
            with self.subTest(address=address):
                self.assertEqual(lookup(self.database, address), want)
            with self.subTest(address="::ffff:" + address):
                self.assertEqual(lookup(self.database, "::ffff:" + address), want)

    def test_ipv6_records(self):
        documentation = record(64505, "Documentation, IPv6")
        unaligned = record(64506, "非整列ネットワーク株式会社")
        cut = record(64507, "Cut At The 6to4 Alias")
        top = record(64508, "Top Of The IPv6 Space")
        expected = [
            # The Teredo row cannot be stored: Teredo addresses answer for
            # their server's IPv4 address (here 1.0.0.0) as in MaxMind's
            # databases.
            ("2001::", None), ("2001:0:100::", record(13335, "Cloudflare, Inc.")),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("2001:db8::", documentation), ("2001:db8:0:ffff:ffff:ffff:ffff:ffff", documentation),
            ("2001:db8:1::", None),
            ("2001:db8:1::4", None), ("2001:db8:1::5", unaligned), ("2001:db8:1::1:4", unaligned),
            ("2001:db8:1::1:5", None),
            # Cut where 6to4 begins: 2002::/16 answers for the IPv4 address
            # inside (2002:0:0:: is 0.0.0.0, 2002:100:: is 1.0.0.0).
            ("2001:ffef:ffff:ffff:ffff:ffff:ffff:ffff", None), ("2001:fff0::", cut),
            ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", cut), ("2002::ff", None),
            ("2002:100::", record(13335, "Cloudflare, Inc.")),
            ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None), ("ff00::", top),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", top),
        ]
        for address, want in expected:
            with self.subTest(address=address):
                self.assertEqual(lookup(self.database, address), want)

    def test_refuses_malformed_rows(self):
        ipv6 = os.path.join(FIXTURES, "asn-ipv6.csv")
        cases = [
            (b"1.0.0.9,1.0.0.0,13335,Backwards\n", "ends before it starts"),
            (b"2001:db8::,2001:db8::ff,13335,Wrong family\n", "not an address of this file"),
            (b"1.0.0.0,1.0.0.255,AS13335,Prefixed\n", "is not a number"),
            (b"1.0.0.0,1.0.0.255,4294967296,Too large\n", "is not a number"),
            (b'1.0.0.0,1.0.0.255,13335,"Unbalanced\n', "unbalanced quotes"),
            (b"1.0.0.0,1.0.0.255,13335,Latin-1 \xe9\n", "not UTF-8"),
            (b"1.0.0.0,1.0.0.255\n", "expected start,end,asn,organization"),
            (b"", "has no rows"),
        ]
        with tempfile.TemporaryDirectory() as tmp:
            for text, message in cases:
                with self.subTest(row=text):
                    ipv4 = os.path.join(tmp, "asn-ipv4.csv")
                    output = os.path.join(tmp, "out.mmdb")
                    with open(ipv4, "wb") as f:
                        f.write(text)
                    result = convert(ipv4, ipv6, output)
                    self.assertNotEqual(result.returncode, 0)
                    self.assertIn(message, result.stderr)
                    self.assertEqual(os.listdir(tmp), ["asn-ipv4.csv"])


def main():
    global WORK_DIR, PACKAGE_DIR
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "geoip-asn-db"),
                        help="where npm packs the package (kept between runs)")
    parser.add_argument("--package-dir", help="an unpacked @ip-location-db/asn to use instead")
    args, rest = parser.parse_known_args()
    WORK_DIR, PACKAGE_DIR = args.work_dir, args.package_dir
    result = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if result.skipped and len(result.skipped) == result.testsRun else 0)


if __name__ == "__main__":
    main()

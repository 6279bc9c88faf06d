#!/usr/bin/env python3
"""The ASN database: tools/asn_db/asn_csv_to_mmdb.pl and data/ip-location-db-asn.mmdb.

ConverterTest (fast, no network): the converter turns the hand-made CSV
files in tests/testdata/asn/ into exactly the records libmaxminddb's
mmdblookup is expected to answer, at each range's first and last address and
just outside it; IPv4-mapped addresses answer as IPv4; malformed input is
refused and leaves no file behind.

UpdateScriptTest (fast, no network): scripts/update-geoip-db, in a copy of
the tree with an npm that serves made-up packages, refreshes both
databases, gives the same bytes for the same version, and keeps the old
files, saying what to do, when the ASN package is gone, when its data fails
the check, or when npm or the Perl module is missing.

BundledDatabaseTest: data/ip-location-db-asn.mmdb has the GeoLite2-ASN
schema, and for well-known addresses and a sample of rows answers what the
CSV files of the npm package it names (@ip-location-db/asn at the version in
its description) say; converting that package again with the bundled build
time gives the same bytes. The package is fetched with `npm pack` into
--work-dir once (or read from --package-dir). Exit 77 (skipped) only when
the registry no longer has that version.

Needs mmdb-bin and libmaxmind-db-writer-perl (scripts/test installs both).
Usage: asn_db_test.py [--work-dir DIR] [--package-dir DIR] [unittest arguments]
"""

import argparse
import bisect
import csv
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONVERTER = os.path.join(REPO, "tools", "asn_db", "asn_csv_to_mmdb.pl")
UPDATE_SCRIPT = os.path.join(REPO, "scripts", "update-geoip-db")
FIXTURES = os.path.join(REPO, "tests", "testdata", "asn")
BUNDLED = os.path.join(REPO, "data", "ip-location-db-asn.mmdb")
PACKAGE = "@ip-location-db/asn"
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
    """Runs the converter (epoch None: its default); returns the finished
    process (not checked)."""
    options = [f"--source-version={version}"] + ([f"--build-epoch={epoch}"] if epoch else [])
    env = {key: value for key, value in os.environ.items() if key != "SOURCE_DATE_EPOCH"}
    return subprocess.run(["perl", CONVERTER] + options + [ipv4_csv, ipv6_csv, output],
                          capture_output=True, text=True, env=env)


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

    def test_build_epoch_defaults_to_the_versions_time(self):
        # ip-location-db versions end in YYYYMMDDHH: the data's time, so the
        # same version converts to the same bytes and the epoch says its age.
        with tempfile.TemporaryDirectory() as tmp:
            output = os.path.join(tmp, "asn.mmdb")
            result = convert(os.path.join(FIXTURES, "asn-ipv4.csv"),
                             os.path.join(FIXTURES, "asn-ipv6.csv"), output,
                             version="2.3.2026061719", epoch=None)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(metadata(output)["Build epoch"],
                             "1781722800 (2026-06-17 19:00:00 UTC)")

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


# A stand-in for npm: `npm pack --silent PACKAGE` copies the tarball
# $FAKE_NPM_DIR holds for it (named as npm names them) and prints its name;
# a package it lacks gets npm's E404.
FAKE_NPM = """#!/bin/sh
[ "$1" = pack ] || exit 2
name=$(echo "$3" | sed 's/^@//; s|/|-|')
for tarball in "$FAKE_NPM_DIR/$name"-[0-9]*.tgz; do
  [ -f "$tarball" ] || break
  cp "$tarball" . && basename "$tarball" && exit 0
done
echo "npm ERR! code E404" >&2
echo "npm ERR! 404 Not Found - GET https://registry.npmjs.org/$3" >&2
exit 1
"""
# A perl without MaxMind::DB::Writer, for the update script's check.
PERL_WITHOUT_WRITER = """#!/bin/sh
case "$1" in -MMaxMind::DB::Writer*) echo "Can't locate MaxMind/DB/Writer/Tree.pm" >&2; exit 2;; esac
exec /usr/bin/perl "$@"
"""


def write_executable(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


def make_package(directory, name, version, files):
    """Writes the tarball npm pack would make of a package with these files
    ({name: bytes}) and a package.json."""
    files = dict(files, **{"package.json": f'{{"name": "{name}", "version": "{version}"}}\n'.encode()})
    with tempfile.TemporaryDirectory() as tmp:
        for file, content in files.items():
            os.makedirs(os.path.join(tmp, "package"), exist_ok=True)
            with open(os.path.join(tmp, "package", file), "wb") as f:
                f.write(content)
        tarball = os.path.join(directory, f"{name[1:].replace('/', '-')}-{version}.tgz")
        with tarfile.open(tarball, "w:gz", compresslevel=1) as tar:
            tar.add(os.path.join(tmp, "package"), arcname="package")


class UpdateScriptTest(unittest.TestCase):
    VERSION = "9.9.2026010100"
    ASN_IPV4 = b'1.1.1.0,1.1.1.255,13335,"Made-up Cloudflare, for the check"\n'
    ASN_IPV6 = b"2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,15169,Made-up Google\n"
    LICENCES = {name: f"test {name}\n".encode()
                for name in ("ROUTEVIEWS-LICENSE", "DBIP-LICENSE", "NRO_LICENSE")}

    @classmethod
    def setUpClass(cls):
        check_tools()

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tree = os.path.join(tmp.name, "tree")
        self.data = os.path.join(self.tree, "data")
        for part in ("scripts", "tools/asn_db", "data"):
            os.makedirs(os.path.join(self.tree, part))
        shutil.copy(UPDATE_SCRIPT, os.path.join(self.tree, "scripts"))
        shutil.copy(CONVERTER, os.path.join(self.tree, "tools", "asn_db"))
        # The old files: the country database and licences as bundled, and
        # an ASN database of the hand-made CSV files.
        for name in ("geo-whois-asn-country.mmdb", "NRO_LICENSE", "ROUTEVIEWS-LICENSE",
                     "DBIP-LICENSE"):
            shutil.copy(os.path.join(REPO, "data", name), self.data)
        result = convert(os.path.join(FIXTURES, "asn-ipv4.csv"),
                         os.path.join(FIXTURES, "asn-ipv6.csv"), self.asn_database())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.packages = os.path.join(tmp.name, "packages")
        self.bin = os.path.join(tmp.name, "bin")
        os.makedirs(self.packages)
        os.makedirs(self.bin)
        write_executable(os.path.join(self.bin, "npm"), FAKE_NPM)
        # The country package: the bundled database again, placing the
        # addresses the script checks.
        with open(os.path.join(REPO, "data", "geo-whois-asn-country.mmdb"), "rb") as f:
            make_package(self.packages, "@ip-location-db/geo-whois-asn-country-mmdb",
                         self.VERSION, {"geo-whois-asn-country.mmdb": f.read(),
                                        "NRO_LICENSE": self.LICENCES["NRO_LICENSE"]})
        self.old = self.snapshot()

    def asn_database(self):
        return os.path.join(self.data, "ip-location-db-asn.mmdb")

    def snapshot(self):
        """Every file under data/, as {name: bytes}."""
        files = {}
        for name in sorted(os.listdir(self.data)):
            with open(os.path.join(self.data, name), "rb") as f:
                files[name] = f.read()
        return files

    def make_asn_package(self, ipv4=ASN_IPV4):
        make_package(self.packages, "@ip-location-db/asn", self.VERSION,
                     dict(self.LICENCES, **{"asn-ipv4.csv": ipv4, "asn-ipv6.csv": self.ASN_IPV6}))

    def run_script(self, path=None):
        env = dict(os.environ, FAKE_NPM_DIR=self.packages,
                   PATH=path or f"{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin")
        env.pop("SOURCE_DATE_EPOCH", None)
        return subprocess.run([os.path.join(self.tree, "scripts", "update-geoip-db")],
                              capture_output=True, text=True, env=env)

    def test_refreshes_both(self):
        self.make_asn_package()
        result = self.run_script()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"updated {self.data}/geo-whois-asn-country.mmdb to "
                      f"@ip-location-db/geo-whois-asn-country-mmdb {self.VERSION}", result.stdout)
        self.assertIn(f"updated {self.asn_database()} to @ip-location-db/asn {self.VERSION}",
                      result.stdout)
        self.assertIn("note: the ASN database was @ip-location-db/asn test: update its section "
                      "of data/README.md", result.stdout)
        self.assertEqual(lookup(self.asn_database(), "1.1.1.1"),
                         record(13335, "Made-up Cloudflare, for the check"))
        self.assertEqual(lookup(self.asn_database(), "2001:4860:4860::8888"),
                         record(15169, "Made-up Google"))
        self.assertEqual(metadata(self.asn_database())["Build epoch"],
                         "1767225600 (2026-01-01 00:00:00 UTC)")
        files = self.snapshot()
        self.assertEqual(sorted(files), sorted(self.old))  # no .tmp left
        for name, content in self.LICENCES.items():
            self.assertEqual(files[name], content)

    def test_same_version_gives_same_bytes(self):
        self.make_asn_package()
        self.assertEqual(self.run_script().returncode, 0)
        first = self.snapshot()
        result = self.run_script()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("note:", result.stdout)
        self.assertEqual(self.snapshot(), first)

    def test_keeps_old_files_when_the_asn_package_is_gone(self):
        result = self.run_script()
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"error: npm could not fetch @ip-location-db/asn; keeping "
                      f"{self.asn_database()}.", result.stderr)
        self.assertIn("https://github.com/sapics/ip-location-db/releases", result.stderr)
        files = self.snapshot()
        for name in ("ip-location-db-asn.mmdb", "ROUTEVIEWS-LICENSE", "DBIP-LICENSE"):
            self.assertEqual(files[name], self.old[name], name)

    def test_keeps_old_files_when_the_new_data_fails_the_check(self):
        self.make_asn_package(ipv4=b"1.1.1.0,1.1.1.255,13336,Wrong\n")
        result = self.run_script()
        self.assertEqual(result.returncode, 1)
        self.assertIn("error: the new ASN database gives 1.1.1.1 AS13336, not AS13335; keeping",
                      result.stderr)
        files = self.snapshot()
        for name in ("ip-location-db-asn.mmdb", "ROUTEVIEWS-LICENSE", "DBIP-LICENSE"):
            self.assertEqual(files[name], self.old[name], name)

    def test_says_what_to_install(self):
        self.make_asn_package()
        # Every command of the system but npm.
        no_npm = os.path.join(self.bin, "no-npm")
        os.makedirs(no_npm)
        for directory in ("/usr/bin", "/bin"):
            for name in os.listdir(directory):
                if name != "npm" and not os.path.exists(os.path.join(no_npm, name)):
                    os.symlink(os.path.join(directory, name), os.path.join(no_npm, name))
        result = self.run_script(path=no_npm)
        self.assertEqual(result.returncode, 1)
        self.assertIn("error: npm is needed (apt-get install npm)", result.stderr)
        self.assertEqual(self.snapshot(), self.old)
        no_writer = os.path.join(self.bin, "no-writer")
        os.makedirs(no_writer)
        write_executable(os.path.join(no_writer, "perl"), PERL_WITHOUT_WRITER)
        result = self.run_script(path=f"{no_writer}:{self.bin}:/usr/bin:/bin")
        self.assertEqual(result.returncode, 1)
        self.assertIn("(apt-get install libmaxmind-db-writer-perl)", result.stderr)
        self.assertEqual(self.snapshot(), self.old)


def fetch_package(version):
    """The unpacked package directory of that version; packs it once."""
    if PACKAGE_DIR:
        return PACKAGE_DIR
    target = os.path.join(WORK_DIR, f"asn-{version}")
    package = os.path.join(target, "package")
    if os.path.isfile(os.path.join(package, "package.json")):
        return package
    if subprocess.run(["sh", "-c", "command -v npm"], capture_output=True).returncode:
        raise AssertionError("npm is missing: apt-get install npm (or pass --package-dir)")
    os.makedirs(target, exist_ok=True)
    result = subprocess.run(["npm", "pack", "--silent", f"{PACKAGE}@{version}"], cwd=target,
                            capture_output=True, text=True)
    if "E404" in result.stderr:
        raise unittest.SkipTest(f"the npm registry no longer has {PACKAGE}@{version}")
    if result.returncode != 0:
        raise AssertionError(f"npm pack {PACKAGE}@{version} failed: {result.stderr}")
    subprocess.run(["tar", "-xzf", result.stdout.strip(), "-C", target], cwd=target, check=True)
    return package


class Rows:
    """A package CSV file's rows, to find what it says of an address: the last
    row in file order containing it (the converter's rule for overlaps)."""

    def __init__(self, path):
        self.rows = []  # (first, last, asn, organization), in file order
        with open(path, newline="", encoding="utf-8") as f:
            for start, end, asn, organization in csv.reader(f):
                self.rows.append((int(ipaddress.ip_address(start)),
                                  int(ipaddress.ip_address(end)), int(asn), organization))
        self.order = sorted(range(len(self.rows)), key=lambda i: self.rows[i][0])
        self.starts = [self.rows[i][0] for i in self.order]
        # The largest last address among the rows up to each place in order.
        self.max_last = []
        for i in self.order:
            self.max_last.append(max(self.rows[i][1], self.max_last[-1] if self.max_last else 0))

    def answer(self, address):
        value = int(ipaddress.ip_address(address))
        found = None
        place = bisect.bisect_right(self.starts, value) - 1
        while place >= 0 and self.max_last[place] >= value:
            index = self.order[place]
            if self.rows[index][1] >= value and (found is None or index > found):
                found = index
            place -= 1
        return None if found is None else self.rows[found]


class BundledDatabaseTest(unittest.TestCase):
    # Well-known resolvers and registries; what they answer comes from the CSV.
    ADDRESSES = ["1.1.1.1", "8.8.8.8", "9.9.9.9", "193.0.6.139", "81.2.69.142",
                 "2001:4860:4860::8888", "2606:4700:4700::1111", "2001:67c:2e8:22::c100:68b"]
    # Every SAMPLE-th row of each file is checked at its first and last address.
    SAMPLE = 10000

    @classmethod
    def setUpClass(cls):
        check_tools()
        cls.metadata = metadata(BUNDLED)
        match = re.search(r"@ip-location-db/asn (\S+)\)", cls.metadata.get("Description", ""))
        if not match:
            raise AssertionError(f"{BUNDLED} names no package version: {cls.metadata}")
        cls.version = match.group(1)
        cls.package = fetch_package(cls.version)
        cls.rows = {family: Rows(os.path.join(cls.package, f"asn-{family}.csv"))
                    for family in ("ipv4", "ipv6")}

    def expect(self, address):
        family = "ipv4" if ipaddress.ip_address(address).version == 4 else "ipv6"
        row = self.rows[family].answer(address)
        return None if row is None else record(row[2], row[3])

    def test_schema(self):
        self.assertEqual(self.metadata["Type"], "ip-location-db-asn")
        self.assertEqual(self.metadata["IP version"], "IPv6")
        for name in ("RouteViews", "NRO", "DB-IP", "CC BY 4.0", "https://db-ip.com"):
            self.assertIn(name, self.metadata["Description"])
        found = lookup(BUNDLED, "1.1.1.1")
        self.assertEqual({key: kind for key, (_, kind) in found.items()},
                         {ASN: "uint32", ORG: "utf8_string"})

    def test_well_known_addresses(self):
        for address in self.ADDRESSES:
            want = self.expect(address)
            with self.subTest(address=address):
                self.assertIsNotNone(want, f"the package has no row for {address}")
                self.assertEqual(lookup(BUNDLED, address), want)
            if ":" not in address:
                with self.subTest(address="::ffff:" + address):
                    self.assertEqual(lookup(BUNDLED, "::ffff:" + address), want)

    def test_sampled_rows(self):
        for family, rows in self.rows.items():
            for first, last, _, _ in rows.rows[::self.SAMPLE]:
                for value in (first, last):
                    address = str(ipaddress.ip_address(value))
                    if family == "ipv6" and (value >> 112 == 0x2002 or value >> 96 == 0x20010000):
                        continue  # Teredo and 6to4 answer for IPv4 addresses
                    with self.subTest(address=address):
                        self.assertEqual(lookup(BUNDLED, address), self.expect(address))

    def test_same_bytes_when_converted_again(self):
        epoch = self.metadata["Build epoch"].split()[0]
        with tempfile.TemporaryDirectory() as tmp:
            output = os.path.join(tmp, "asn.mmdb")
            result = convert(os.path.join(self.package, "asn-ipv4.csv"),
                             os.path.join(self.package, "asn-ipv6.csv"), output,
                             version=self.version, epoch=epoch)
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(output, "rb") as fresh, open(BUNDLED, "rb") as bundled:
                self.assertTrue(fresh.read() == bundled.read(),
                                f"{BUNDLED} is not what the converter makes of "
                                f"{PACKAGE}@{self.version}")

    def test_licence_files_and_readme_match_the_package(self):
        for name in ("ROUTEVIEWS-LICENSE", "DBIP-LICENSE", "NRO_LICENSE"):
            with self.subTest(file=name):
                with open(os.path.join(self.package, name), "rb") as package, \
                        open(os.path.join(REPO, "data", name), "rb") as bundled:
                    self.assertEqual(bundled.read(), package.read())
        # data/README.md describes this version (scripts/update-geoip-db
        # says to edit it when the version changes).
        with open(os.path.join(REPO, "data", "README.md"), encoding="utf-8") as f:
            self.assertIn(f"{PACKAGE}` (version {self.version}", " ".join(f.read().split()))


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

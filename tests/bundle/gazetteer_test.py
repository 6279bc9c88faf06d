#!/usr/bin/env python3
"""The countries gazetteer the dashboard's geomaps use (grafana/gazetteer/).

- Every country code the bundled database can emit has a position there. The
  codes come from the database itself: every data record reachable in its
  search tree (IPv4 and IPv6), read with tests/fleet/world.py's reader of
  the MaxMind DB format, not from a list.
- It is read as Grafana reads it: a JSON array whose first entry has a
  non-zero latitude and longitude and a key, then key, keys and name of each
  entry looked up without regard to case.
- South Sudan (SS) is there and the U.S. Minor Outlying Islands (UM) are on
  their islands (Grafana's own file lacks SS and puts UM at 0, 0); every
  position is a valid latitude and longitude, none at 0, 0, and each is the
  live map's (exporter/web/live_map/centroids.json), so both maps agree.
- The file is what grafana/gazetteer/make_gazetteer.py writes; the dashboard's
  four geomaps reference the path where compose mounts it, and the
  Kubernetes ConfigMap carries it.

No root, no network: python3 and python3-yaml, iso-codes for the generator.
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import unittest

import yaml  # python3-yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "fleet"))
sys.path.insert(0, os.path.join(REPO, "grafana", "gazetteer"))
import make_gazetteer  # noqa: E402
import world  # noqa: E402  tests/fleet/world.py: the MaxMind DB reader

GAZETTEER = os.path.join(REPO, "grafana", "gazetteer", "countries.json")
GENERATOR = os.path.join(REPO, "grafana", "gazetteer", "make_gazetteer.py")
DASHBOARD = os.path.join(REPO, "grafana", "dashboards", "ebpf-geoip.json")
CENTROIDS = os.path.join(REPO, "exporter", "web", "live_map", "centroids.json")
CONFIG_MAP = os.path.join(REPO, "deploy", "kubernetes", "grafana", "gazetteer.yaml")
# The islands of UM (latitude, longitude); a point within 50 km of one is on them.
UM_ISLANDS = {"Wake Island": (19.29, 166.63), "Midway Atoll": (28.21, -177.37),
              "Johnston Atoll": (16.73, -169.53), "Palmyra Atoll": (5.88, -162.08),
              "Kingman Reef": (6.40, -162.38), "Baker Island": (0.19, -176.48),
              "Howland Island": (0.81, -176.62), "Jarvis Island": (-0.37, -160.02),
              "Navassa Island": (18.40, -75.01)}


def database_codes(path=world.BUNDLED):
    """Every country code a lookup in the database can answer: the codes of
    all data records reachable from the root of its search tree."""
    db = world.Database(path)
    seen, records, todo = {0}, set(), [0]
    while todo:
        node = todo.pop()
        for bit in (0, 1):
            child = db.record(node, bit)
            if child < db.node_count:
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
            elif child > db.node_count:  # == node_count: no data
                records.add(child)
    return {db.country_of_record(record) for record in records}


def grafana_lookup(entries):
    """{key: (latitude, longitude)} as Grafana's geomap finds places in a
    gazetteer of this format: by key, each of keys, and name, in upper case
    too (its lookups try the key as given, then upper-cased)."""
    first = entries[0]
    if not (first.get("latitude") and first.get("longitude") and
            (first.get("key") or first.get("keys"))):
        raise AssertionError("Grafana would not take this for a gazetteer of points: "
                             "its first entry needs a non-zero latitude and longitude and a key")
    found = {}
    for entry in entries:
        point = (entry["latitude"], entry["longitude"])
        names = ([entry["name"]] if entry.get("name") else []) + (
            [entry["key"]] if entry.get("key") else []) + entry.get("keys", [])
        for name in names:
            found[name] = found[name.upper()] = point
    return found


def distance_km(a, b):
    (lat1, lon1), (lat2, lon2) = [(math.radians(x), math.radians(y)) for x, y in (a, b)]
    h = (math.sin((lat2 - lat1) / 2) ** 2 +
         math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6371 * math.asin(math.sqrt(h))


def dashboard_gazetteer_paths():
    """{geomap title: its layer's gazetteer path}."""
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return {p["title"]: layer["location"].get("gazetteer")
            for p in panels if p["type"] == "geomap" for layer in p["options"]["layers"]}


class GazetteerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(GAZETTEER, encoding="utf-8") as f:
            cls.text = f.read()
        cls.entries = json.loads(cls.text)
        cls.lookup = grafana_lookup(cls.entries)
        cls.codes = database_codes()

    def test_the_database_walk_finds_the_countries(self):
        # A sanity check of the walk, not the list it is checked against.
        self.assertGreater(len(self.codes), 200)
        self.assertLessEqual({"US", "DE", "CN", "BR", "SS", "UM"}, self.codes)
        self.assertNotIn(None, self.codes)
        for code in self.codes:
            self.assertRegex(code, r"^[A-Z]{2}$")

    def test_every_code_the_database_emits_has_a_position(self):
        missing = sorted(code for code in self.codes if code not in self.lookup)
        self.assertEqual(missing, [], "codes the bundled database emits that the geomaps "
                         "cannot place: give them a point in make_gazetteer.py and run it")

    def test_south_sudan_and_the_minor_outlying_islands(self):
        latitude, longitude = self.lookup["SS"]
        self.assertTrue(3.5 < latitude < 12.3 and 23.4 < longitude < 36.0, (latitude, longitude))
        um = self.lookup["UM"]
        self.assertNotEqual(um, (0, 0))
        nearest = min(UM_ISLANDS, key=lambda island: distance_km(um, UM_ISLANDS[island]))
        self.assertLess(distance_km(um, UM_ISLANDS[nearest]), 50, nearest)

    def test_every_entry_is_a_valid_position_and_codes_are_unique(self):
        seen = set()
        for entry in self.entries:
            with self.subTest(entry=entry.get("keys")):
                self.assertEqual(set(entry), {"keys", "latitude", "longitude", "name"})
                self.assertTrue(entry["name"])
                latitude, longitude = entry["latitude"], entry["longitude"]
                self.assertTrue(-90 <= latitude <= 90 and -180 <= longitude <= 180)
                self.assertFalse(abs(latitude) < 0.5 and abs(longitude) < 0.5, "at 0, 0")
                alpha2 = entry["keys"][0]
                self.assertRegex(alpha2, r"^[A-Z]{2}$")
                for alpha3 in entry["keys"][1:]:
                    self.assertRegex(alpha3, r"^[A-Z]{3}$")
                self.assertFalse(seen & set(entry["keys"]), "a key in two entries")
                seen |= set(entry["keys"])

    def test_the_live_map_places_every_code_the_database_can_emit(self):
        # Not Grafana's concern, but the same question for the exporter's
        # own map (AN, withdrawn in 2010, had no point there).
        with open(CENTROIDS) as f:
            centroids = json.load(f)
        self.assertEqual(self.codes - set(centroids), set())

    def test_positions_are_the_live_maps(self):
        with open(CENTROIDS) as f:
            centroids = json.load(f)
        for entry in self.entries:
            code = entry["keys"][0]
            # Withdrawn codes (AN) too: the live map places them as well.
            longitude, latitude = centroids[code][:2]
            self.assertEqual((entry["latitude"], entry["longitude"]), (latitude, longitude), code)
        self.assertLessEqual(set(centroids), {e["keys"][0] for e in self.entries})

    def test_file_is_what_make_gazetteer_writes(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "countries.json")
            result = subprocess.run([sys.executable, GENERATOR, out], capture_output=True,
                                    text=True, timeout=60)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            with open(out, encoding="utf-8") as f:
                fresh = json.load(f)
        # Names come from the installed iso-codes, which a newer Debian may
        # word otherwise; keys and positions must be the same everywhere.
        strip = lambda entries: [{k: v for k, v in e.items() if k != "name"} for e in entries]
        self.assertTrue(strip(fresh) == strip(self.entries),
                        "grafana/gazetteer/countries.json differs from what "
                        "grafana/gazetteer/make_gazetteer.py writes: run it")

    def test_dashboard_geomaps_use_it_where_compose_mounts_it(self):
        paths = dashboard_gazetteer_paths()
        self.assertEqual(len(paths), 4, paths)
        self.assertEqual(set(paths.values()), {"public/gazetteer/ebpf-geoip-countries.json"})
        with open(os.path.join(REPO, "docker-compose.yml")) as f:
            volumes = yaml.safe_load(f)["services"]["grafana"]["volumes"]
        self.assertIn("./grafana/gazetteer/countries.json:/usr/share/grafana/"
                      "public/gazetteer/ebpf-geoip-countries.json:ro", volumes)

    def test_kubernetes_config_map_contains_it(self):
        with open(CONFIG_MAP, encoding="utf-8") as f:
            config_map = yaml.safe_load(f)
        self.assertEqual(config_map["kind"], "ConfigMap")
        self.assertTrue(config_map["data"]["ebpf-geoip-countries.json"] == self.text,
                        "deploy/kubernetes/grafana/gazetteer.yaml differs from "
                        "grafana/gazetteer/countries.json: run deploy/kubernetes/generate.sh")


if __name__ == "__main__":
    unittest.main(verbosity=2)

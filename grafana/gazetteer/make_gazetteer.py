#!/usr/bin/env python3
"""Writes countries.json: the countries gazetteer of the dashboard's geomaps.

Grafana's own public/gazetteer/countries.json lacks South Sudan (SS) and puts
the U.S. Minor Outlying Islands (UM) at 0°, 0°, and the bundled database
emits both (tests/bundle/gazetteer_test.py checks every code it can emit).
This one takes each country's point from the live map's
exporter/web/live_map/centroids.json, so that both maps put a country at the
same place, and its names from Debian's iso-codes:

    grafana/gazetteer/make_gazetteer.py [OUT]

writes grafana/gazetteer/countries.json, or OUT. Run it when centroids.json
changes, then deploy/kubernetes/generate.sh (the Kubernetes ConfigMap is a
copy). README.md in this directory says how Grafana serves the file.

The format is the one Grafana's geomap reads from a JSON array (that of the
old worldmap panel): per entry "keys" (alpha-2, then alpha-3 where one
exists; lookups ignore case), "latitude", "longitude" and "name". Grafana
tells the format by its first entry, whose latitude and longitude must not
be 0, so the script refuses to write a file where they are.

A point is the centroid of the country's largest polygon in Natural Earth
(make_centroids.py says why). For UM that is Palmyra Atoll (5.88° N, 162.08° W),
the largest of the islands in Natural Earth's shapes: an island of the
territory, as Wake Island or Midway would be, and the live map's point.
"""
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CENTROIDS = os.path.join(REPO, "exporter", "web", "live_map", "centroids.json")
ISO_CODES = "/usr/share/iso-codes/json"
OUT = os.path.join(REPO, "grafana", "gazetteer", "countries.json")

# Withdrawn ISO codes that GeoIP databases still emit (registry records never
# updated), named from ISO 3166-3. AN, the Netherlands Antilles, dissolved
# in 2010; the live map places it at Willemstad, its capital.
FORMER = ("AN",)
# Codes outside ISO 3166-1 that GeoIP databases use: XK is user-assigned.
UNOFFICIAL_NAMES = {"XK": "Kosovo"}


def iso_countries(iso_dir):
    """{alpha-2: (alpha-3, name)} of ISO 3166-1 and of the FORMER codes."""
    with open(os.path.join(iso_dir, "iso_3166-1.json")) as f:
        current = json.load(f)["3166-1"]
    with open(os.path.join(iso_dir, "iso_3166-3.json")) as f:
        withdrawn = [c for c in json.load(f)["3166-3"] if c.get("alpha_2") in FORMER]
    return {c["alpha_2"]: (c["alpha_3"], c.get("common_name", c["name"]))
            for c in current + withdrawn}


def gazetteer(centroids, countries):
    """The entries, sorted by alpha-2 code."""
    points = {code: (value[1], value[0]) for code, value in centroids.items()}  # lat, lon
    for code in FORMER:
        if code not in points:
            sys.exit(f"make_gazetteer.py: no point for {code}: give it one in make_centroids.py")
    entries = []
    for code in sorted(points):
        latitude, longitude = points[code]
        if code in countries:
            alpha3, name = countries[code]
            keys = [code, alpha3]
        elif code in UNOFFICIAL_NAMES:
            keys, name = [code], UNOFFICIAL_NAMES[code]
        else:
            sys.exit(f"make_gazetteer.py: no name for {code}: add it to UNOFFICIAL_NAMES")
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            sys.exit(f"make_gazetteer.py: {code} is at {latitude}, {longitude}")
        if abs(latitude) < 0.5 and abs(longitude) < 0.5:
            sys.exit(f"make_gazetteer.py: {code} is at 0°, 0°, in the sea")
        entries.append({"keys": keys, "latitude": latitude, "longitude": longitude, "name": name})
    if not (entries[0]["latitude"] and entries[0]["longitude"]):
        sys.exit("make_gazetteer.py: Grafana would not read a file whose first entry "
                 "has a latitude or longitude of 0")
    return entries


def text_of(entries):
    """JSON, one entry a line, so that a change shows as one line of a diff."""
    return "[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries) + "\n]\n"


def main():
    if len(sys.argv) > 2 or sys.argv[1:2] in (["-h"], ["--help"]):
        sys.exit(__doc__)
    out = sys.argv[1] if len(sys.argv) == 2 else OUT
    with open(CENTROIDS) as f:
        centroids = json.load(f)
    text = text_of(gazetteer(centroids, iso_countries(ISO_CODES)))
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()

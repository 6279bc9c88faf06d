#!/usr/bin/env python3
"""Writes centroids.json: where the live map puts each country's bubble,
and which world-atlas shapes are the country's (for the filled view).

Maintainer tool, run once when the map data changes; its output is
committed, so builds need neither this script nor the 3.6 MB source file.

    npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    exporter/web/live_map/make_centroids.py package/countries-10m.json \
        /usr/share/iso-codes/json/iso_3166-1.json > exporter/web/live_map/centroids.json

The point for a country is the centroid of its largest polygon, not of all
of them: the centroid of France with French Guiana, or of the United States
with Alaska and Hawaii, would fall in the sea. Natural Earth's 1:10m
countries (world-atlas) give shapes for every ISO 3166-1 country but the
eleven in kApproximate, which it folds into another country (Guadeloupe into
France, Svalbard into Norway, ...); those get a hand-entered approximate
point of their main island, ample at this map's scale. kApproximate also
places AN (the Netherlands Antilles), withdrawn from ISO 3166-1 in 2010 but
still found in GeoIP data.

Each entry is alpha-2 -> [longitude, latitude, shape key, ...]: the keys
are the world-atlas ids (ISO 3166-1 numeric) or, for shapes without one,
the names of the shapes that belong to the country. The page fills those
shapes in its filled-country view; a country with no key (the eleven above)
or whose shapes are too small for the 1:110m map gets a dot instead. (AN,
withdrawn from ISO 3166-1, is the twelfth: no shape, but GeoIP data uses it.)
"""
import json
import math
import sys

# ISO alpha-2 -> (longitude, latitude), approximate; see the docstring.
kApproximate = {
    "BQ": (-68.26, 12.18),  # Bonaire
    "BV": (3.36, -54.42),  # Bouvet Island
    "CC": (96.87, -12.16),  # Cocos (Keeling) Islands
    "CX": (105.63, -10.49),  # Christmas Island
    "GF": (-53.13, 3.93),  # French Guiana
    "GP": (-61.55, 16.25),  # Guadeloupe
    "MQ": (-61.02, 14.64),  # Martinique
    "RE": (55.53, -21.12),  # Reunion
    "SJ": (16.0, 78.5),  # Svalbard
    "TK": (-171.85, -9.17),  # Tokelau
    "YT": (45.15, -12.83),  # Mayotte
    # Netherlands Antilles: withdrawn from ISO 3166-1 in 2010 (so not in
    # iso-codes), but GeoIP data still uses it for some blocks; placed at
    # Willemstad, Curacao, its capital.
    "AN": (-68.93, 12.12),
}

# Natural Earth shapes without an ISO numeric code whose alpha-2 code GeoIP
# databases use anyway: XK is user-assigned, so not in iso-codes; ISO 3166-1
# counts Somaliland as part of Somalia and Northern Cyprus as part of
# Cyprus, and so do the databases for most of their addresses.
kByName = {"Kosovo": "XK", "Somaliland": "SO", "N. Cyprus": "CY"}


def DecodeArcs(topology):
    """Arcs as lists of (lon, lat): undoes the delta and quantization."""
    scale_x, scale_y = topology["transform"]["scale"]
    shift_x, shift_y = topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * scale_x + shift_x, y * scale_y + shift_y))
        arcs.append(points)
    return arcs


def Ring(arcs, indexes):
    """Joins a ring's arcs; ~i means arc i reversed. Shared ends appear once."""
    points = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc if not points else arc[1:])
    return points


def Unwrap(ring):
    """Makes longitudes continuous: world-atlas keeps shapes spherical, so a
    ring that crosses the antimeridian (Russia, Fiji) jumps from 180 to -180;
    shifting by 360 after each jump gives a plain planar ring."""
    points = [ring[0]]
    for lon, lat in ring[1:]:
        previous = points[-1][0]
        while lon - previous > 180:
            lon -= 360
        while lon - previous < -180:
            lon += 360
        points.append((lon, lat))
    return points


def AreaAndCentroid(ring):
    """Shoelace area and centroid, with longitudes scaled by cos(latitude)
    so that polygons far from the equator are not overweighted."""
    mean_lat = sum(lat for _, lat in ring) / len(ring)
    k = math.cos(math.radians(mean_lat))
    area = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]):
        cross = x0 * k * y1 - x1 * k * y0
        area += cross
        cx += (x0 + x1) * k * cross
        cy += (y0 + y1) * cross
    if area == 0:
        return 0.0, ring[0]
    return abs(area) / 2, (cx / (3 * area) / k, cy / (3 * area))


def main(topology_path, iso_path):
    with open(topology_path) as f:
        topology = json.load(f)
    with open(iso_path) as f:
        numeric_to_alpha2 = {c["numeric"]: c["alpha_2"] for c in json.load(f)["3166-1"]}
    arcs = DecodeArcs(topology)
    # Several shapes can share a code (Australia and the Ashmore and Cartier
    # Islands are both 036), so keep the largest polygon over all of them.
    largest = {}
    keys = {}  # alpha-2 -> the keys of its shapes, in the file's order
    for geometry in topology["objects"]["countries"]["geometries"]:
        code = numeric_to_alpha2.get(geometry.get("id")) or kByName.get(
            geometry["properties"].get("name"))
        if code is None:
            continue
        key = geometry.get("id") or geometry["properties"]["name"]
        if key not in keys.setdefault(code, []):
            keys[code].append(key)
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            area, (lon, lat) = AreaAndCentroid(Unwrap(Ring(arcs, polygon[0])))
            centroid = ((lon + 180) % 360 - 180, lat)
            if area > largest.get(code, (-1, None))[0]:
                largest[code] = (area, centroid)
    points = {code: centroid for code, (_, centroid) in largest.items()}
    for code, point in kApproximate.items():
        if code in points:
            sys.exit(f"{code} now has a shape: drop it from kApproximate")
        points[code] = point
    missing = sorted(set(numeric_to_alpha2.values()) - set(points))
    if missing:
        sys.exit(f"no point for {' '.join(missing)}")
    rows = []
    for code, (lon, lat) in sorted(points.items()):
        shapes = "".join(f",{json.dumps(key)}" for key in keys.get(code, []))
        rows.append(f'"{code}":[{lon:.2f},{lat:.2f}{shapes}]')
    print("{" + ",\n".join(rows) + "}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

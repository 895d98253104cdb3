#!/usr/bin/env python3
"""A synthetic 10 km x 10 km town for measuring map sizes (docs/benchmarks.md, "Map
size"): a street grid every 100 m (named, major every 500 m), a river, and a building
every 25 m along each street (40,000 buildings), in the Protomaps layer names.
Writes roads/water/buildings/earth .geojson into the folder given (default: .).

    python3 tests/data/map/synthetic_town.py /tmp/big && cd /tmp/big &&
    tippecanoe -o town10km.pmtiles -Z0 -z16 --force -L roads:roads.geojson \
      -L water:water.geojson -L buildings:buildings.geojson -L earth:earth.geojson
"""
import json
import math
import os
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(out, exist_ok=True)
LAT0, LON0 = 40.40, -3.75
KM_LAT = 1 / 111.32
KM_LON = 1 / (111.32 * math.cos(math.radians(LAT0)))
SIZE_KM, STEP_KM, HOUSE_KM = 10.0, 0.1, 0.025


def ll(x_km, y_km):
    return [round(LON0 + x_km * KM_LON, 7), round(LAT0 + y_km * KM_LAT, 7)]


def fc(features):
    return {"type": "FeatureCollection", "features": features}


def feature(geom, props):
    return {"type": "Feature", "properties": props, "geometry": geom}


roads, buildings = [], []
n = int(SIZE_KM / STEP_KM)
for i in range(n + 1):
    t = i * STEP_KM
    kind = "major_road" if i % 5 == 0 else "minor_road"
    roads.append(feature({"type": "LineString", "coordinates": [ll(0, t), ll(SIZE_KM, t)]},
                         {"kind": kind, "name": f"Calle {i + 1}"}))
    roads.append(feature({"type": "LineString", "coordinates": [ll(t, 0), ll(t, SIZE_KM)]},
                         {"kind": kind, "name": f"Avenida {i + 1}"}))
    if i == n:
        continue
    # Buildings along the street running east at y = t, on its north side.
    for j in range(int(SIZE_KM / HOUSE_KM)):
        x, y, w = j * HOUSE_KM + 0.004, t + 0.01, 0.015
        ring = [ll(x, y), ll(x + w, y), ll(x + w, y + w), ll(x, y + w), ll(x, y)]
        buildings.append(feature({"type": "Polygon", "coordinates": [ring]}, {"kind": "building"}))
river = [ll(4.9, 0), ll(5.1, 0), ll(5.3, 5), ll(5.1, SIZE_KM), ll(4.9, SIZE_KM), ll(5.1, 5), ll(4.9, 0)]
layers = {
    "roads": fc(roads),
    "buildings": fc(buildings),
    "water": fc([feature({"type": "Polygon", "coordinates": [river]}, {"kind": "water", "name": "Río"})]),
    "earth": fc([feature({"type": "Polygon", "coordinates": [[ll(0, 0), ll(SIZE_KM, 0),
                 ll(SIZE_KM, SIZE_KM), ll(0, SIZE_KM), ll(0, 0)]]}, {"kind": "earth"})]),
}
for name, obj in layers.items():
    with open(os.path.join(out, f"{name}.geojson"), "w") as f:
        json.dump(obj, f)
print(f"{len(roads)} streets, {len(buildings)} buildings written to {out}")

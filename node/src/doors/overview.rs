//! The printed board's overview map (issue 27): a few tiles of the installed PMTiles
//! map around the open needs, drawn on the server as one inline SVG (the printouts run
//! no script), with each positioned need as a numbered circle.
//!
//! The tiles come from outside (the map file), so decoding is bounded: at most
//! [`MAX_TILES`] tiles, [`MAX_TILE_BYTES`] read per tile and [`MAX_TILE_INFLATED`]
//! after gunzip, at most [`MAX_POINTS`] points drawn in all and [`TIME_BUDGET`] of
//! work; a tile that does not decode is left blank, never a panic.
//!
//! The vector tiles (MVT, a small protobuf) are decoded here rather than with a crate:
//! `mvt-reader` brings `prost` and `geo-types` for what is four message types, and the
//! drawing needs only the geometry commands and two string properties (`kind`, `name`).

use std::fmt::Write as _;
use std::io::Read;
use std::time::{Duration, Instant};

use super::pmtiles::{decode_directory, Header, MapInfo};

/// The most tiles read for one overview (3 × 3 around a 512-pixel view).
pub const MAX_TILES: usize = 9;
/// The most bytes of one tile read from the file.
pub const MAX_TILE_BYTES: u64 = 512 * 1024;
/// The most bytes one tile may inflate to.
pub const MAX_TILE_INFLATED: u64 = 2 * 1024 * 1024;
/// The most bytes of one leaf directory read.
pub const MAX_LEAF_BYTES: u64 = 1024 * 1024;
/// The most points drawn in all.
pub const MAX_POINTS: usize = 100_000;
/// The most time spent reading and drawing the tiles.
pub const TIME_BUDGET: Duration = Duration::from_millis(1500);
/// The view's side in pixels (tiles are 256 pixels).
pub const VIEW: f64 = 512.0;
/// Room kept around the needs inside the view, in pixels.
const MARGIN: f64 = 28.0;

/// A need to draw and where it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pin {
    /// The caller's index for it (its place in the board's list).
    pub number: usize,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

/// Web Mercator: a position in world pixels at zoom `z` (256 pixels a tile).
pub fn world_px(lat: f64, lon: f64, z: u8) -> (f64, f64) {
    let size = 256.0 * f64::from(1u32 << z.min(30));
    let lat = lat.clamp(-85.051_128, 85.051_128).to_radians();
    let x = (lon + 180.0) / 360.0 * size;
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * size;
    (x, y)
}

/// The PMTiles tile id of z/x/y (Hilbert order within a zoom, after all lower zooms).
pub fn tile_id(z: u8, x: u64, y: u64) -> u64 {
    let mut acc: u64 = 0;
    for a in 0..u32::from(z) {
        acc += 1u64 << (2 * a);
    }
    let n: u64 = 1 << z;
    let (mut tx, mut ty) = (x, y);
    let mut d: u64 = 0;
    let mut s = n / 2;
    while s > 0 {
        let rx = u64::from(tx & s > 0);
        let ry = u64::from(ty & s > 0);
        d += s * s * ((3 * rx) ^ ry);
        if ry == 0 {
            if rx == 1 {
                // Only the bits below `s` matter from here on, so wrapping is exact.
                tx = (s - 1).wrapping_sub(tx);
                ty = (s - 1).wrapping_sub(ty);
            }
            std::mem::swap(&mut tx, &mut ty);
        }
        s /= 2;
    }
    acc + d
}

/// Where tile `id` is in the file: `(offset, length)` of its bytes, following at most
/// three levels of leaf directories; `None` if the map has no such tile.
pub fn find_tile(
    h: &Header,
    id: u64,
    read: &mut impl FnMut(u64, u64) -> Option<Vec<u8>>,
) -> Option<(u64, u64)> {
    let (mut offset, mut length) = (h.root_offset, h.root_length);
    for _depth in 0..4 {
        if length > MAX_LEAF_BYTES {
            return None;
        }
        let raw = read(offset, length)?;
        let dir = inflate(&raw, h.internal_compression, MAX_LEAF_BYTES * 8)?;
        let entries = decode_directory(&dir).ok()?;
        let k = match entries.binary_search_by_key(&id, |e| e.tile_id) {
            Ok(k) => k,
            Err(0) => return None,
            Err(k) => k - 1,
        };
        let e = entries[k];
        if e.run_length == 0 {
            offset = h.leaf_offset.checked_add(e.offset)?;
            length = u64::from(e.length);
            continue;
        }
        if id - e.tile_id >= u64::from(e.run_length) {
            return None;
        }
        return Some((h.data_offset.checked_add(e.offset)?, u64::from(e.length)));
    }
    None
}

fn inflate(bytes: &[u8], compression: u8, max: u64) -> Option<Vec<u8>> {
    match compression {
        0 | 1 => Some(bytes.to_vec()),
        2 => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(bytes)
                .take(max + 1)
                .read_to_end(&mut out)
                .ok()?;
            (out.len() as u64 <= max).then_some(out)
        }
        _ => None,
    }
}

/// One feature of a vector tile, as far as the overview needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    /// 1 point, 2 line, 3 polygon.
    pub kind: u8,
    /// Its `kind` property, if a string.
    pub class: Option<String>,
    /// Its `name` property, if a string.
    pub name: Option<String>,
    /// Its parts (lines or rings) in tile coordinates (0..extent).
    pub parts: Vec<Vec<(i64, i64)>>,
}

/// One layer of a vector tile.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Its name (`water`, `roads`, ...).
    pub name: String,
    /// Tile coordinates per tile side (4096 usually).
    pub extent: u32,
    /// Its features.
    pub features: Vec<Feature>,
}

/// A protobuf reader over a slice: varints and length-delimited fields, no panics.
struct Pb<'a> {
    b: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Other,
}

impl<'a> Pb<'a> {
    fn new(b: &'a [u8]) -> Self {
        Pb { b, pos: 0 }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// The next field: its number and value; `None` at the end or on bad bytes.
    fn next_field(&mut self) -> Option<(u64, Field<'a>)> {
        if self.pos >= self.b.len() {
            return None;
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.skip(8)?;
                Field::Other
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let end = self.pos.checked_add(len)?;
                let v = self.b.get(self.pos..end)?;
                self.pos = end;
                Field::Bytes(v)
            }
            5 => {
                self.skip(4)?;
                Field::Other
            }
            _ => return None,
        };
        Some((key >> 3, value))
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        (end <= self.b.len()).then(|| self.pos = end)
    }
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Decodes a vector tile's layers named in `wanted`, at most `max_points` points in
/// all; bad bytes end the decoding with what was read so far.
pub fn decode_mvt(tile: &[u8], wanted: &[&str], max_points: usize) -> Vec<Layer> {
    let mut points = 0usize;
    let mut layers = Vec::new();
    let mut pb = Pb::new(tile);
    while let Some((no, f)) = pb.next_field() {
        if let (3, Field::Bytes(b)) = (no, f) {
            if let Some(l) = decode_layer(b, wanted, &mut points, max_points) {
                layers.push(l);
            }
        }
    }
    layers
}

fn decode_layer(b: &[u8], wanted: &[&str], points: &mut usize, max: usize) -> Option<Layer> {
    let (mut name, mut extent) = (None, 4096u32);
    let (mut keys, mut values, mut raw_features) = (Vec::new(), Vec::new(), Vec::new());
    let mut pb = Pb::new(b);
    while let Some((no, f)) = pb.next_field() {
        match (no, f) {
            (1, Field::Bytes(s)) => name = Some(String::from_utf8_lossy(s).into_owned()),
            (2, Field::Bytes(s)) => raw_features.push(s),
            (3, Field::Bytes(s)) => keys.push(String::from_utf8_lossy(s).into_owned()),
            (4, Field::Bytes(s)) => {
                let mut v = Pb::new(s);
                let mut text = None;
                while let Some((no, f)) = v.next_field() {
                    if let (1, Field::Bytes(t)) = (no, f) {
                        text = Some(String::from_utf8_lossy(t).into_owned());
                    }
                }
                values.push(text);
            }
            (5, Field::Varint(e)) => extent = u32::try_from(e).ok().filter(|e| *e > 0)?,
            _ => {}
        }
    }
    let name = name?;
    if !wanted.contains(&name.as_str()) {
        return None;
    }
    let mut features = Vec::new();
    for fb in raw_features {
        if *points >= max {
            break;
        }
        let (mut kind, mut tags, mut geometry) = (0u8, &[][..], &[][..]);
        let mut pb = Pb::new(fb);
        while let Some((no, f)) = pb.next_field() {
            match (no, f) {
                (2, Field::Bytes(t)) => tags = t,
                (3, Field::Varint(k)) => kind = u8::try_from(k).unwrap_or(0),
                (4, Field::Bytes(g)) => geometry = g,
                _ => {}
            }
        }
        let (mut class, mut fname) = (None, None);
        let mut t = Pb::new(tags);
        while let (Some(k), Some(v)) = (t.varint(), t.varint()) {
            let key = usize::try_from(k).ok().and_then(|k| keys.get(k));
            let value = usize::try_from(v)
                .ok()
                .and_then(|v| values.get(v))
                .and_then(Clone::clone);
            match key.map(String::as_str) {
                Some("kind") => class = value,
                Some("name") => fname = value,
                _ => {}
            }
        }
        let parts = decode_geometry(geometry, points, max);
        if !parts.is_empty() {
            features.push(Feature {
                kind,
                class,
                name: fname,
                parts,
            });
        }
    }
    Some(Layer {
        name,
        extent,
        features,
    })
}

fn decode_geometry(g: &[u8], points: &mut usize, max: usize) -> Vec<Vec<(i64, i64)>> {
    let mut parts: Vec<Vec<(i64, i64)>> = Vec::new();
    let (mut x, mut y) = (0i64, 0i64);
    let mut pb = Pb::new(g);
    while let Some(cmd) = pb.varint() {
        let (id, count) = (cmd & 7, cmd >> 3);
        match id {
            1 | 2 => {
                for k in 0..count {
                    let (Some(dx), Some(dy)) = (pb.varint(), pb.varint()) else {
                        return parts;
                    };
                    if *points >= max {
                        return parts;
                    }
                    x = x.saturating_add(zigzag(dx));
                    y = y.saturating_add(zigzag(dy));
                    if id == 1 || (k == 0 && parts.is_empty()) {
                        parts.push(Vec::new());
                    }
                    if let Some(p) = parts.last_mut() {
                        p.push((x, y));
                    }
                    *points += 1;
                }
            }
            7 => {
                if *points >= max {
                    return parts;
                }
                *points += 1;
                if let Some(first) = parts.last().and_then(|p| p.first()).copied() {
                    if let Some(p) = parts.last_mut() {
                        p.push(first);
                    }
                }
            }
            _ => return parts,
        }
    }
    parts
}

fn esc(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(60)
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The zoom and view origin (world pixels) that show all `pins`: the highest zoom, up
/// to the map's, at which they fit in the view with a margin, the view centred on them.
pub fn frame(info: &MapInfo, pins: &[Pin]) -> Option<(u8, f64, f64)> {
    let h = &info.header;
    let mut z = h.max_zoom.min(super::pmtiles::MAX_ZOOM);
    loop {
        let px: Vec<(f64, f64)> = pins.iter().map(|p| world_px(p.lat, p.lon, z)).collect();
        let (x0, x1) = px
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (y0, y1) = px
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
        if (x1 - x0 <= VIEW - 2.0 * MARGIN && y1 - y0 <= VIEW - 2.0 * MARGIN) || z <= h.min_zoom {
            let ox = ((x0 + x1) / 2.0 - VIEW / 2.0).round();
            let oy = ((y0 + y1) / 2.0 - VIEW / 2.0).round();
            return px.first().map(|_| (z, ox, oy));
        }
        z -= 1;
    }
}

/// The overview as an inline `<svg>`: the map's water, roads and a few street names in
/// the tiles around the `pins` (those inside the map's bounds), each pin a numbered
/// circle numbered 1, 2, ... in the order given. `read(offset, length)` reads the map
/// file. Also returns the [`Pin::number`]s of the pins drawn, in order (the first is
/// marked 1). `None` when no pin is inside the map, or its tiles are not vector tiles.
pub fn render(
    info: &MapInfo,
    pins: &[Pin],
    mut read: impl FnMut(u64, u64) -> Option<Vec<u8>>,
    label: &str,
) -> Option<(String, Vec<usize>)> {
    let started = Instant::now();
    let [w, s, e, n] = info.bounds();
    let pins: Vec<Pin> = pins
        .iter()
        .copied()
        .filter(|p| p.lat >= s && p.lat <= n && p.lon >= w && p.lon <= e)
        .collect();
    if pins.is_empty() || info.header.tile_type != 1 {
        return None;
    }
    let (z, ox, oy) = frame(info, &pins)?;
    let h = &info.header;
    let last = (1u64 << z) - 1;
    let tile = |v: f64| ((v / 256.0).floor().max(0.0) as u64).min(last);
    let (tx0, tx1) = (tile(ox), tile(ox + VIEW - 1.0));
    let (ty0, ty1) = (tile(oy), tile(oy + VIEW - 1.0));
    let (mut water, mut major, mut minor) = (String::new(), String::new(), String::new());
    let mut names: Vec<(String, f64, f64)> = Vec::new();
    let mut points = 0usize;
    let mut tiles = 0usize;
    'tiles: for ty in ty0..=ty1 {
        for tx in tx0..=tx1 {
            if tiles >= MAX_TILES || started.elapsed() > TIME_BUDGET {
                break 'tiles;
            }
            tiles += 1;
            let Some((off, len)) = find_tile(h, tile_id(z, tx, ty), &mut read) else {
                continue;
            };
            if len > MAX_TILE_BYTES {
                continue;
            }
            let Some(raw) = read(off, len) else { continue };
            let Some(bytes) = inflate(&raw, h.tile_compression, MAX_TILE_INFLATED) else {
                continue;
            };
            let layers = decode_mvt(
                &bytes,
                &["water", "roads"],
                MAX_POINTS.saturating_sub(points),
            );
            for l in layers {
                let scale = 256.0 / f64::from(l.extent);
                let bx = tx as f64 * 256.0 - ox;
                let by = ty as f64 * 256.0 - oy;
                for f in &l.features {
                    let mut d = String::new();
                    for part in &f.parts {
                        points += part.len();
                        for (k, (x, y)) in part.iter().enumerate() {
                            let px = bx + *x as f64 * scale;
                            let py = by + *y as f64 * scale;
                            let _ = write!(d, "{}{px:.1} {py:.1}", if k == 0 { "M" } else { "L" });
                        }
                    }
                    match (l.name.as_str(), f.kind) {
                        ("water", 3) => water.push_str(&d),
                        ("roads", 2) => {
                            let is_major = f.class.as_deref() == Some("major_road");
                            if is_major {
                                major.push_str(&d);
                            } else {
                                minor.push_str(&d);
                            }
                            if let (Some(name), Some(part)) = (&f.name, f.parts.first()) {
                                let (x, y) = part[part.len() / 2];
                                let at = (bx + x as f64 * scale, by + y as f64 * scale);
                                let inside =
                                    (0.0..VIEW).contains(&at.0) && (0.0..VIEW).contains(&at.1);
                                if inside
                                    && names.len() < 8
                                    && !names.iter().any(|(n, ..)| n == name)
                                {
                                    names.push((name.clone(), at.0, at.1));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let mut out = format!(
        "<figure class=\"overview\"><svg xmlns=\"http://www.w3.org/2000/svg\" \
         viewBox=\"0 0 {VIEW} {VIEW}\" role=\"img\" aria-label=\"{label}\" \
         data-zoom=\"{z}\" data-x0=\"{ox}\" data-y0=\"{oy}\">\
         <rect width=\"{VIEW}\" height=\"{VIEW}\" fill=\"#fff\" stroke=\"#000\"/>",
        label = esc(label)
    );
    if !water.is_empty() {
        let _ = write!(
            out,
            "<path class=\"water\" fill=\"#cfe3f3\" d=\"{water}\"/>"
        );
    }
    if !minor.is_empty() {
        let _ = write!(out, "<path class=\"road minor\" fill=\"none\" stroke=\"#888\" stroke-width=\"1.5\" stroke-linejoin=\"round\" d=\"{minor}\"/>");
    }
    if !major.is_empty() {
        let _ = write!(out, "<path class=\"road major\" fill=\"none\" stroke=\"#333\" stroke-width=\"3.5\" stroke-linejoin=\"round\" d=\"{major}\"/>");
    }
    for (name, x, y) in &names {
        let _ = write!(
            out,
            "<text class=\"street\" x=\"{x:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" \
             fill=\"#222\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{}</text>",
            y - 4.0,
            esc(name)
        );
    }
    for (k, p) in pins.iter().enumerate() {
        let (x, y) = world_px(p.lat, p.lon, z);
        let (x, y) = (x - ox, y - oy);
        let _ = write!(
            out,
            "<g class=\"pin\" data-n=\"{n}\"><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"9\" \
             fill=\"#fff\" stroke=\"#c00\" stroke-width=\"2.5\"/><text x=\"{x:.1}\" y=\"{:.1}\" \
             font-size=\"11\" font-weight=\"bold\" text-anchor=\"middle\">{n}</text></g>",
            y + 4.0,
            n = k + 1
        );
    }
    out.push_str("</svg>");
    if let Some(a) = &info.attribution {
        let _ = write!(out, "<figcaption class=\"small\">{}</figcaption>", esc(a));
    }
    out.push_str("</figure>\n");
    Some((out, pins.iter().map(|p| p.number).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_ids_as_the_spec_numbers_them() {
        assert_eq!(tile_id(0, 0, 0), 0);
        assert_eq!(tile_id(1, 0, 0), 1);
        assert_eq!(tile_id(1, 0, 1), 2);
        assert_eq!(tile_id(1, 1, 1), 3);
        assert_eq!(tile_id(1, 1, 0), 4);
        assert_eq!(tile_id(2, 0, 0), 5);
        assert_eq!(tile_id(3, 7, 0), 84);
        assert_eq!(tile_id(12, 3423, 1763), 19078479);
    }

    #[test]
    fn bad_tiles_decode_to_nothing_without_panicking() {
        for bytes in [
            &b""[..],
            b"\x1a",
            b"\x1a\xff\xff\xff\xff\x0f",
            b"\x1a\x02\x0a\x00",
        ] {
            let _ = decode_mvt(bytes, &["roads"], 10);
        }
        // One road whose geometry closes its path a thousand times: still at most
        // `max_points` points.
        let ld = |key: u8, b: &[u8]| [&[key, b.len() as u8][..], b].concat();
        let mut geometry = vec![0x09, 2, 2];
        geometry.extend([0x0f; 100]);
        let feature = [&[0x18, 2][..], &ld(0x22, &geometry)].concat();
        let layer = [ld(0x0a, b"roads"), ld(0x12, &feature)].concat();
        let tile = ld(0x1a, &layer);
        let layers = decode_mvt(&tile, &["roads"], 10);
        assert_eq!(layers.len(), 1);
        let points: usize = layers[0].features[0].parts.iter().map(Vec::len).sum();
        assert_eq!(points, 10);
    }
}

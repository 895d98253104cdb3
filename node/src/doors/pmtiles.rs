//! Offline maps in: reading a **PMTiles** v3 file (one file of map tiles, as Protomaps
//! builds and tippecanoe write them; spec: <https://github.com/protomaps/PMTiles/blob/main/spec/v3/spec.md>)
//! far enough to know it is whole and what it shows: the fixed 127-byte header (bounds,
//! centre, zooms, tile type), the root directory (decoded and checked entry by entry)
//! and the JSON metadata (the map's name and attribution).
//!
//! The file comes from outside (a USB stick, a download), so nothing here trusts it:
//! every offset is checked against the file's length before it is read, what is read
//! is bounded ([`MAX_ROOT_BYTES`], [`MAX_METADATA_BYTES`]), decompression stops at a
//! bound ([`MAX_INFLATED`]), and every failure is a [`MapError`] that says which part
//! is wrong, never a panic. The tiles themselves are not decoded: the page's map
//! library reads them.
//!
//! Not the `pmtiles` crate: its reader is async-only over its own backends (mmap,
//! HTTP, S3); this is the fixed header, one varint directory and a bounded gunzip.

use std::io::Read;

use serde_json::Value;
use thiserror::Error;

/// The header's length in bytes.
pub const HEADER_LEN: usize = 127;
/// The spec puts the header and root directory in the first 16 KiB.
pub const MAX_ROOT_BYTES: u64 = 16_384;
/// The largest metadata section read (Protomaps builds' is a few KiB).
pub const MAX_METADATA_BYTES: u64 = 1024 * 1024;
/// The most bytes a compressed directory or metadata section may inflate to.
pub const MAX_INFLATED: u64 = 8 * 1024 * 1024;
/// The deepest zoom a web map draws (PMTiles tile ids address up to 31).
pub const MAX_ZOOM: u8 = 30;

/// Why a file is not a map this node can serve; each names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MapError {
    /// Shorter than the header.
    #[error("the file is {0} bytes: too short for a PMTiles map (its header alone is 127 bytes); is it a PMTiles file, and was the copy cut short?")]
    TooShort(u64),
    /// The magic bytes are not `PMTiles`.
    #[error("this is not a PMTiles file (it does not start with \"PMTiles\"); a map is one .pmtiles file, see docs/map.md{hint}")]
    NotPmtiles {
        /// What it looks like instead, when known.
        hint: &'static str,
    },
    /// A PMTiles version other than 3.
    #[error("this is a PMTiles version {0} file; aidmesh reads version 3 (convert it with `pmtiles convert OLD.pmtiles NEW.pmtiles`)")]
    Version(u8),
    /// A section the header points to lies (partly) beyond the end of the file.
    #[error("the file is truncated or damaged: the header says its {section} runs to byte {end}, but the file has {len} bytes (was the copy cut short?)")]
    Truncated {
        /// Which section.
        section: &'static str,
        /// Where the header says it ends.
        end: u64,
        /// The file's length.
        len: u64,
    },
    /// A header field is impossible.
    #[error("the file is damaged: its header {0}")]
    BadHeader(String),
    /// The root directory does not decode, or its entries point outside the file.
    #[error("the file is damaged: its root directory (the index of its tiles) is unreadable: {0}")]
    BadDirectory(String),
    /// The metadata is not a JSON object.
    #[error("the file is damaged: its metadata is unreadable: {0}")]
    BadMetadata(String),
    /// Directories compressed in a way this node does not read.
    #[error("the map's directories are compressed with {0}; aidmesh reads uncompressed or gzip directories (as tippecanoe and Protomaps builds write them)")]
    Compression(&'static str),
    /// Reading the file failed.
    #[error("cannot read the map file: {0}")]
    Io(String),
}

/// The fixed header of a PMTiles v3 file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Header {
    pub root_offset: u64,
    pub root_length: u64,
    pub metadata_offset: u64,
    pub metadata_length: u64,
    pub leaf_offset: u64,
    pub leaf_length: u64,
    pub data_offset: u64,
    pub data_length: u64,
    pub addressed_tiles: u64,
    pub tile_entries: u64,
    pub tile_contents: u64,
    pub clustered: bool,
    /// Compression of directories and metadata (1 none, 2 gzip, 3 brotli, 4 zstd).
    pub internal_compression: u8,
    /// Compression of the tiles (same codes).
    pub tile_compression: u8,
    /// 1 MVT, 2 PNG, 3 JPEG, 4 WebP, 5 AVIF (0 unknown).
    pub tile_type: u8,
    pub min_zoom: u8,
    pub max_zoom: u8,
    pub min_lon_e7: i32,
    pub min_lat_e7: i32,
    pub max_lon_e7: i32,
    pub max_lat_e7: i32,
    pub center_zoom: u8,
    pub center_lon_e7: i32,
    pub center_lat_e7: i32,
}

/// What a checked map file shows.
#[derive(Debug, Clone, PartialEq)]
pub struct MapInfo {
    /// The header.
    pub header: Header,
    /// The file's length.
    pub bytes: u64,
    /// The metadata's `name`, if any.
    pub name: Option<String>,
    /// The metadata's `attribution` (e.g. "© OpenStreetMap"), if any.
    pub attribution: Option<String>,
    /// Entries in the root directory.
    pub root_entries: usize,
}

impl MapInfo {
    /// `[west, south, east, north]` in degrees.
    pub fn bounds(&self) -> [f64; 4] {
        let h = &self.header;
        [
            e7(h.min_lon_e7),
            e7(h.min_lat_e7),
            e7(h.max_lon_e7),
            e7(h.max_lat_e7),
        ]
    }

    /// `[lon, lat]` in degrees.
    pub fn center(&self) -> [f64; 2] {
        [e7(self.header.center_lon_e7), e7(self.header.center_lat_e7)]
    }

    /// The tiles' type as the pmtiles reader names it: `mvt`, `png`, `jpg`, `webp`,
    /// `avif`, `mlt` or `unknown`.
    pub fn tile_type(&self) -> &'static str {
        match self.header.tile_type {
            1 => "mvt",
            2 => "png",
            3 => "jpg",
            4 => "webp",
            5 => "avif",
            6 => "mlt",
            _ => "unknown",
        }
    }
}

fn e7(v: i32) -> f64 {
    // A correctly rounded division: -37000000 gives the double nearest -3.7.
    f64::from(v) / 1e7
}

/// Reads the header from the first bytes of a file.
pub fn parse_header(b: &[u8]) -> Result<Header, MapError> {
    if b.len() < 7 || &b[..7] != b"PMTiles" {
        return Err(MapError::NotPmtiles { hint: sniff(b) });
    }
    if b.len() < 8 {
        return Err(MapError::TooShort(b.len() as u64));
    }
    if b[7] != 3 {
        return Err(MapError::Version(b[7]));
    }
    if b.len() < HEADER_LEN {
        return Err(MapError::TooShort(b.len() as u64));
    }
    let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
    let i = |i: usize| i32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default());
    Ok(Header {
        root_offset: u(8),
        root_length: u(16),
        metadata_offset: u(24),
        metadata_length: u(32),
        leaf_offset: u(40),
        leaf_length: u(48),
        data_offset: u(56),
        data_length: u(64),
        addressed_tiles: u(72),
        tile_entries: u(80),
        tile_contents: u(88),
        clustered: b[96] == 1,
        internal_compression: b[97],
        tile_compression: b[98],
        tile_type: b[99],
        min_zoom: b[100],
        max_zoom: b[101],
        min_lon_e7: i(102),
        min_lat_e7: i(106),
        max_lon_e7: i(110),
        max_lat_e7: i(114),
        center_zoom: b[118],
        center_lon_e7: i(119),
        center_lat_e7: i(123),
    })
}

/// What a file that is not PMTiles looks like, for the refusal.
fn sniff(b: &[u8]) -> &'static str {
    if b.starts_with(b"SQLite format 3") {
        " (this looks like an MBTiles/SQLite file: convert it with `pmtiles convert FILE.mbtiles FILE.pmtiles`)"
    } else if b.starts_with(&[0x1f, 0x8b]) {
        " (this is gzip-compressed: unpack it first)"
    } else if b.starts_with(b"PK\x03\x04") {
        " (this is a zip archive: unpack it first)"
    } else if b.first().is_some_and(|c| *c == b'{') {
        " (this looks like JSON or GeoJSON: make a map from it with tippecanoe)"
    } else {
        ""
    }
}

/// Checks the header's fields and that every section lies within a file of `len`
/// bytes.
pub fn check_header(h: &Header, len: u64) -> Result<(), MapError> {
    let sections = [
        ("root directory", h.root_offset, h.root_length),
        ("metadata", h.metadata_offset, h.metadata_length),
        ("leaf directories", h.leaf_offset, h.leaf_length),
        ("tile data", h.data_offset, h.data_length),
    ];
    for (section, offset, length) in sections {
        let end = offset.checked_add(length).ok_or_else(|| {
            MapError::BadHeader(format!(
                "gives an impossible {section} (offset {offset}, length {length})"
            ))
        })?;
        if length > 0 && offset < HEADER_LEN as u64 {
            return Err(MapError::BadHeader(format!(
                "puts the {section} at byte {offset}, inside the header itself"
            )));
        }
        if end > len {
            return Err(MapError::Truncated { section, end, len });
        }
    }
    if h.root_length == 0 {
        return Err(MapError::BadDirectory("it is empty".into()));
    }
    if h.root_length > MAX_ROOT_BYTES {
        return Err(MapError::BadDirectory(format!(
            "it is {} bytes; the PMTiles spec keeps it within the first {MAX_ROOT_BYTES}",
            h.root_length
        )));
    }
    if h.max_zoom > MAX_ZOOM || h.min_zoom > h.max_zoom {
        return Err(MapError::BadHeader(format!(
            "gives zooms {} to {} (a map's zooms run from 0 to at most {MAX_ZOOM}, the least first)",
            h.min_zoom, h.max_zoom
        )));
    }
    let lon = |v: i32| (-1_800_000_000..=1_800_000_000).contains(&v);
    let lat = |v: i32| (-900_000_000..=900_000_000).contains(&v);
    if !(lon(h.min_lon_e7) && lon(h.max_lon_e7) && lat(h.min_lat_e7) && lat(h.max_lat_e7))
        || h.min_lat_e7 > h.max_lat_e7
        || !(lon(h.center_lon_e7) && lat(h.center_lat_e7))
    {
        return Err(MapError::BadHeader(format!(
            "gives bounds or a centre off the Earth (west {}, south {}, east {}, north {}; centre {}, {})",
            e7(h.min_lon_e7),
            e7(h.min_lat_e7),
            e7(h.max_lon_e7),
            e7(h.max_lat_e7),
            e7(h.center_lon_e7),
            e7(h.center_lat_e7),
        )));
    }
    if h.center_zoom > MAX_ZOOM {
        return Err(MapError::BadHeader(format!(
            "gives centre zoom {}",
            h.center_zoom
        )));
    }
    Ok(())
}

/// Inflates a directory or the metadata, as the header's internal compression says.
fn inflate(bytes: &[u8], compression: u8) -> Result<Vec<u8>, MapError> {
    match compression {
        // 0 is "unknown"; tools that write it write uncompressed sections.
        0 | 1 => Ok(bytes.to_vec()),
        2 => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(bytes)
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut out)
                .map_err(|e| MapError::BadDirectory(format!("gzip: {e}")))?;
            if out.len() as u64 > MAX_INFLATED {
                return Err(MapError::BadDirectory(format!(
                    "it inflates to more than {MAX_INFLATED} bytes"
                )));
            }
            Ok(out)
        }
        3 => Err(MapError::Compression("brotli")),
        4 => Err(MapError::Compression("zstd")),
        _ => Err(MapError::BadHeader(format!(
            "names an unknown compression ({compression})"
        ))),
    }
}

/// One entry of a directory: a run of tiles, or (run length 0) a leaf directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The first tile's id (Hilbert order over all zooms).
    pub tile_id: u64,
    /// Offset in the tile data (or the leaf directories).
    pub offset: u64,
    /// Length in bytes.
    pub length: u32,
    /// Tiles that share these bytes; 0 for a leaf directory.
    pub run_length: u32,
}

fn varint(b: &[u8], pos: &mut usize) -> Result<u64, MapError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b
            .get(*pos)
            .ok_or_else(|| MapError::BadDirectory("it ends in the middle of a number".into()))?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(MapError::BadDirectory("a number in it is too long".into()))
}

/// Decodes an (inflated) directory: the entry count, then the tile ids (as deltas),
/// the run lengths, the lengths and the offsets (0 meaning "right after the previous").
pub fn decode_directory(b: &[u8]) -> Result<Vec<Entry>, MapError> {
    let mut pos = 0;
    let n = varint(b, &mut pos)?;
    // Each entry takes at least four bytes (one a field), so a count beyond that is a lie.
    if n > (b.len() as u64) / 4 {
        return Err(MapError::BadDirectory(format!(
            "it claims {n} entries in {} bytes",
            b.len()
        )));
    }
    let n = n as usize;
    let mut entries = vec![
        Entry {
            tile_id: 0,
            offset: 0,
            length: 0,
            run_length: 0
        };
        n
    ];
    let mut last_id: u64 = 0;
    for (k, e) in entries.iter_mut().enumerate() {
        let delta = varint(b, &mut pos)?;
        if k > 0 && delta == 0 {
            return Err(MapError::BadDirectory(
                "two entries have the same tile id".into(),
            ));
        }
        last_id = last_id
            .checked_add(delta)
            .ok_or_else(|| MapError::BadDirectory("a tile id overflows".into()))?;
        e.tile_id = last_id;
    }
    let small = |v: u64, what: &str| {
        u32::try_from(v).map_err(|_| MapError::BadDirectory(format!("a {what} is too large ({v})")))
    };
    for e in entries.iter_mut() {
        e.run_length = small(varint(b, &mut pos)?, "run length")?;
    }
    for e in entries.iter_mut() {
        e.length = small(varint(b, &mut pos)?, "length")?;
        if e.length == 0 {
            return Err(MapError::BadDirectory("an entry has length 0".into()));
        }
    }
    for k in 0..n {
        let v = varint(b, &mut pos)?;
        entries[k].offset = if v == 0 && k > 0 {
            let prev = entries[k - 1];
            prev.offset
                .checked_add(u64::from(prev.length))
                .ok_or_else(|| MapError::BadDirectory("an offset overflows".into()))?
        } else {
            v.checked_sub(1)
                .ok_or_else(|| MapError::BadDirectory("the first entry has no offset".into()))?
        };
    }
    if pos != b.len() {
        return Err(MapError::BadDirectory(format!(
            "{} bytes are left over after its {n} entries",
            b.len() - pos
        )));
    }
    Ok(entries)
}

/// Checks that every entry of the root directory points inside the tile data (a run
/// of tiles) or the leaf directories (a leaf).
fn check_entries(h: &Header, entries: &[Entry]) -> Result<(), MapError> {
    if entries.is_empty() {
        return Err(MapError::BadDirectory(
            "it has no entries: the map has no tiles".into(),
        ));
    }
    for e in entries {
        let (section, size) = if e.run_length == 0 {
            ("leaf directories", h.leaf_length)
        } else {
            ("tile data", h.data_length)
        };
        let end = e.offset.saturating_add(u64::from(e.length));
        if end > size {
            return Err(MapError::BadDirectory(format!(
                "an entry (tile {}) points to bytes {}..{end} of the {section}, which has {size}",
                e.tile_id, e.offset
            )));
        }
    }
    Ok(())
}

/// Reads the metadata's name and attribution (absent or non-text values are `None`).
fn decode_metadata(bytes: &[u8]) -> Result<(Option<String>, Option<String>), MapError> {
    if bytes.is_empty() {
        return Ok((None, None));
    }
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| MapError::BadMetadata(e.to_string()))?;
    let Value::Object(m) = v else {
        return Err(MapError::BadMetadata("it is JSON but not an object".into()));
    };
    let text = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    Ok((text("name"), text("attribution")))
}

/// Checks a map whose bytes are read by `read(offset, length)` (a file, or a slice),
/// `len` bytes long: the header, the root directory, the metadata.
pub fn inspect_with(
    len: u64,
    mut read: impl FnMut(u64, u64) -> Result<Vec<u8>, MapError>,
) -> Result<MapInfo, MapError> {
    let head = read(0, len.min(HEADER_LEN as u64))?;
    let header = parse_header(&head)?;
    check_header(&header, len)?;
    let root = read(header.root_offset, header.root_length)?;
    let root = inflate(&root, header.internal_compression)?;
    let entries = decode_directory(&root)?;
    check_entries(&header, &entries)?;
    if header.metadata_length > MAX_METADATA_BYTES {
        return Err(MapError::BadMetadata(format!(
            "it is {} bytes; at most {MAX_METADATA_BYTES} are read",
            header.metadata_length
        )));
    }
    let meta = read(header.metadata_offset, header.metadata_length)?;
    let meta = inflate(&meta, header.internal_compression).map_err(|e| match e {
        MapError::BadDirectory(d) => MapError::BadMetadata(d),
        other => other,
    })?;
    let (name, attribution) = decode_metadata(&meta)?;
    Ok(MapInfo {
        header,
        bytes: len,
        name,
        attribution,
        root_entries: entries.len(),
    })
}

/// Checks a whole map held in memory.
pub fn inspect(bytes: &[u8]) -> Result<MapInfo, MapError> {
    inspect_with(bytes.len() as u64, |offset, length| {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(length).unwrap_or(usize::MAX));
        bytes
            .get(start..end)
            .map(<[u8]>::to_vec)
            .ok_or(MapError::Truncated {
                section: "requested bytes",
                end: offset.saturating_add(length),
                len: bytes.len() as u64,
            })
    })
}

/// Checks an open map file, reading only its header, root directory and metadata.
pub fn inspect_file(file: &std::fs::File) -> Result<MapInfo, MapError> {
    use std::os::unix::fs::FileExt;
    let len = file
        .metadata()
        .map_err(|e| MapError::Io(e.to_string()))?
        .len();
    inspect_with(len, |offset, length| {
        let mut buf = vec![0; usize::try_from(length).unwrap_or(0)];
        file.read_exact_at(&mut buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                MapError::Truncated {
                    section: "file",
                    end: offset.saturating_add(length),
                    len,
                }
            } else {
                MapError::Io(e.to_string())
            }
        })?;
        Ok(buf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(h: &Header) -> Vec<u8> {
        let mut b = b"PMTiles\x03".to_vec();
        for v in [
            h.root_offset,
            h.root_length,
            h.metadata_offset,
            h.metadata_length,
            h.leaf_offset,
            h.leaf_length,
            h.data_offset,
            h.data_length,
            h.addressed_tiles,
            h.tile_entries,
            h.tile_contents,
        ] {
            b.extend(v.to_le_bytes());
        }
        b.extend([
            u8::from(h.clustered),
            h.internal_compression,
            h.tile_compression,
            h.tile_type,
            h.min_zoom,
            h.max_zoom,
        ]);
        for v in [h.min_lon_e7, h.min_lat_e7, h.max_lon_e7, h.max_lat_e7] {
            b.extend(v.to_le_bytes());
        }
        b.push(h.center_zoom);
        b.extend(h.center_lon_e7.to_le_bytes());
        b.extend(h.center_lat_e7.to_le_bytes());
        assert_eq!(b.len(), HEADER_LEN);
        b
    }

    /// A tiny uncompressed map: one tile of 3 bytes at z0, metadata naming it.
    fn tiny() -> Vec<u8> {
        let meta = br#"{"name":"Tiny","attribution":"nobody"}"#;
        // 1 entry; tile id delta 0; run length 1; length 3; offset 0+1.
        let dir = [1u8, 0, 1, 3, 1];
        let root_offset = HEADER_LEN as u64;
        let metadata_offset = root_offset + dir.len() as u64;
        let data_offset = metadata_offset + meta.len() as u64;
        let h = Header {
            root_offset,
            root_length: dir.len() as u64,
            metadata_offset,
            metadata_length: meta.len() as u64,
            leaf_offset: data_offset,
            leaf_length: 0,
            data_offset,
            data_length: 3,
            addressed_tiles: 1,
            tile_entries: 1,
            tile_contents: 1,
            clustered: true,
            internal_compression: 1,
            tile_compression: 1,
            tile_type: 2,
            min_zoom: 0,
            max_zoom: 0,
            min_lon_e7: -1_800_000_000,
            min_lat_e7: -850_000_000,
            max_lon_e7: 1_800_000_000,
            max_lat_e7: 850_000_000,
            center_zoom: 0,
            center_lon_e7: 0,
            center_lat_e7: 0,
        };
        let mut b = header_bytes(&h);
        b.extend(dir);
        b.extend(meta);
        b.extend(b"abc");
        b
    }

    #[test]
    fn a_whole_map_is_read() {
        let info = inspect(&tiny()).expect("tiny map");
        assert_eq!(info.name.as_deref(), Some("Tiny"));
        assert_eq!(info.attribution.as_deref(), Some("nobody"));
        assert_eq!(info.tile_type(), "png");
        assert_eq!(info.bounds(), [-180.0, -85.0, 180.0, 85.0]);
        assert_eq!(info.root_entries, 1);
    }

    #[test]
    fn each_kind_of_damage_is_named() {
        let good = tiny();
        assert!(matches!(
            inspect(b"hello"),
            Err(MapError::NotPmtiles { .. })
        ));
        let mut v2 = good.clone();
        v2[7] = 2;
        assert_eq!(inspect(&v2), Err(MapError::Version(2)));
        assert!(matches!(
            inspect(&good[..good.len() - 1]),
            Err(MapError::Truncated {
                section: "tile data",
                ..
            })
        ));
        assert!(matches!(
            inspect(&good[..100]),
            Err(MapError::TooShort(100))
        ));
        let mut bad_dir = good.clone();
        bad_dir[HEADER_LEN] = 9; // nine entries in five bytes
        assert!(matches!(inspect(&bad_dir), Err(MapError::BadDirectory(_))));
        let mut outside = good.clone();
        outside[HEADER_LEN + 3] = 4; // the tile's length: 4 of a 3-byte tile section
        assert!(matches!(inspect(&outside), Err(MapError::BadDirectory(_))));
        let mut meta = good.clone();
        meta[HEADER_LEN + 5] = b'['; // the metadata no longer parses
        assert!(matches!(inspect(&meta), Err(MapError::BadMetadata(_))));
        let mut zoom = good;
        zoom[101] = 40;
        assert!(matches!(inspect(&zoom), Err(MapError::BadHeader(_))));
    }

    #[test]
    fn every_prefix_and_every_flipped_byte_is_an_answer_not_a_panic() {
        let good = tiny();
        for n in 0..good.len() {
            let _ = inspect(&good[..n]);
        }
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                let _ = inspect(&b);
            }
        }
    }
}

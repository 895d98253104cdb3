//! `aidmesh map`: the town's offline map on this hub (one PMTiles file, see
//! docs/map.md): what is installed, `map add FILE` to install or replace it (checked,
//! atomic), `map remove`. Works on the data directory itself, whether the node runs or
//! not: a running node serves the new map from its next request on.

use std::path::{Path, PathBuf};

use aidmesh_node::doors::pmtiles::MapInfo;
use aidmesh_node::node::map::{self, map_path};
use clap::Subcommand;
use serde_json::{json, Value};

use crate::error::CliError;
use crate::output::human_size;

/// `aidmesh map` subcommands.
#[derive(Subcommand)]
pub(crate) enum MapAction {
    /// Install a town's map (a PMTiles file) on this hub, replacing the one there, e.g.
    /// `aidmesh map add town.pmtiles`. The file is checked first: one that is not
    /// PMTiles, or is damaged or cut short, is refused and the old map kept.
    Add {
        /// The PMTiles file.
        file: PathBuf,
    },
    /// Remove this hub's map (the page then shows the lists only).
    Remove,
}

/// `aidmesh map [--json]`, `map add FILE`, `map remove`.
pub(crate) fn run(dir: &Path, json: bool, action: Option<MapAction>) -> Result<(), CliError> {
    match action {
        None => show(dir, json),
        Some(MapAction::Add { file }) => add(dir, &file, json),
        Some(MapAction::Remove) => remove(dir, json),
    }
}

/// What a map shows, as `map --json` prints it.
fn info_json(dir: &Path, i: &MapInfo) -> Value {
    json!({
        "installed": true,
        "name": i.name,
        "attribution": i.attribution,
        "bounds": i.bounds(),
        "center": i.center(),
        "center_zoom": i.header.center_zoom,
        "min_zoom": i.header.min_zoom,
        "max_zoom": i.header.max_zoom,
        "bytes": i.bytes,
        "tile_type": i.tile_type(),
        "file": map_path(dir),
    })
}

/// What a map shows, for people.
fn describe(i: &MapInfo) -> String {
    let [w, s, e, n] = i.bounds();
    let [lon, lat] = i.center();
    let kind = if i.tile_type() == "mvt" {
        "vector"
    } else {
        "pictures"
    };
    format!(
        "  tiles:    {} ({kind})\n  zooms:    {} to {}\n  covers:   west {w}, south {s}, east {e}, north {n}\n  centre:   {lat}, {lon} at zoom {}\n  size:     {}\n",
        i.tile_type(),
        i.header.min_zoom,
        i.header.max_zoom,
        i.header.center_zoom,
        human_size(i.bytes),
    )
}

fn title(i: &MapInfo) -> String {
    match &i.name {
        Some(n) => format!("\"{n}\""),
        None => "(no name in its metadata)".into(),
    }
}

fn show(dir: &Path, json: bool) -> Result<(), CliError> {
    let info = map::installed(dir)?;
    match (info, json) {
        (Some(i), true) => super::print_json(&info_json(dir, &i)),
        (None, true) => super::print_json(&json!({ "installed": false })),
        (Some(i), false) => {
            println!("Map {}", title(&i));
            print!("{}", describe(&i));
            if let Some(a) = &i.attribution {
                println!("  credit:   {a}");
            }
        }
        (None, false) => println!(
            "No map is installed on this hub. Install a town's PMTiles file with \
             `aidmesh map add FILE`; docs/map.md says how to make one."
        ),
    }
    Ok(())
}

fn add(dir: &Path, file: &Path, json: bool) -> Result<(), CliError> {
    let before = map::installed(dir).ok().flatten();
    let i = map::install(dir, file)?;
    if json {
        super::print_json(&info_json(dir, &i));
        return Ok(());
    }
    match before {
        Some(old) => println!("Replaced the map {} with {}", title(&old), title(&i)),
        None => println!("Installed the map {}", title(&i)),
    }
    print!("{}", describe(&i));
    println!("A running node serves it from now on, at /map/tiles.pmtiles; no restart needed.");
    Ok(())
}

fn remove(dir: &Path, json: bool) -> Result<(), CliError> {
    let removed = map::remove(dir)?;
    if json {
        super::print_json(&json!({ "removed": removed }));
    } else if removed {
        println!("Removed this hub's map; the page shows the lists only.");
    } else {
        println!("No map was installed.");
    }
    Ok(())
}

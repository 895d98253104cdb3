//! `aidmesh export`: needs and offers (csv, hxl), a map (geojson) or the shared
//! welfare register (pfif), to a file or standard output.

use std::path::{Path, PathBuf};

use crate::client::Client;
use crate::error::CliError;

/// `aidmesh export`: fetches the export and writes it to `out` (whole or not at all:
/// a temporary file renamed into place) or to standard output. When `out` is a
/// directory, the file in it takes the node's name for it, which says which hub and
/// node made it and when.
pub(crate) fn run(dir: &Path, format: &str, out: Option<PathBuf>) -> Result<(), CliError> {
    use std::io::Write;
    let (bytes, name) =
        Client::for_dir(dir)?.get_file("/api/v1/export", &[("format", format.to_string())])?;
    let out = match (out, name) {
        (Some(d), Some(name)) if d.is_dir() => Some(d.join(name)),
        (out, _) => out,
    };
    let Some(path) = out else {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(&bytes)
            .and_then(|()| stdout.flush())
            .map_err(CliError::Stdout);
    };
    let cannot = |e: std::io::Error| {
        CliError::write(
            &path,
            ". Is the directory there and writable (a USB stick still mounted)?",
        )(e)
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(CliError::NoDirectory {
            path,
            parent,
            hint: "; is the USB stick mounted?",
        });
    }
    let mut tmp = tempfile::NamedTempFile::new_in(&parent).map_err(cannot)?;
    tmp.write_all(&bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(cannot)?;
    tmp.persist(&path).map_err(|e| cannot(e.error))?;
    println!(
        "wrote {} ({} bytes, {})",
        path.display(),
        bytes.len(),
        format.trim().to_ascii_lowercase()
    );
    Ok(())
}

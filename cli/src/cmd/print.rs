//! `aidmesh print`: the printable board or the welfare round sheet from the running
//! node (`GET /print`, `/print/round`), written to an HTML file, or to a PDF through
//! Chromium's headless printing when the file ends in `.pdf`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::client::Client;
use crate::error::CliError;

/// What `aidmesh print` was asked for.
pub struct PrintArgs {
    /// The street round sheet instead of the board.
    pub round: bool,
    /// Language code ("en", "es").
    pub lang: String,
    /// The hub page address for the QR code.
    pub url: Option<String>,
    /// The file to write (.html, or .pdf through Chromium).
    pub out: PathBuf,
}

/// Chromium's names on the machines we know; `CHROMIUM` overrides.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    })
}

fn cannot(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + use<> {
    CliError::write(path, ". Is the directory there and writable?")
}

/// Fetches the printout and writes it.
pub fn run(dir: &Path, a: PrintArgs) -> Result<(), CliError> {
    let mut query = vec![("lang", a.lang.clone())];
    if let Some(u) = &a.url {
        query.push(("url", u.clone()));
    }
    let path = if a.round { "/print/round" } else { "/print" };
    let html = Client::for_dir(dir)?.get_bytes(path, &query)?;
    let parent = match a.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(CliError::NoDirectory {
            path: a.out.clone(),
            parent,
            hint: "",
        });
    }
    let pdf = a
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pdf"));
    if !pdf {
        let mut tmp = tempfile::NamedTempFile::new_in(&parent).map_err(cannot(&a.out))?;
        tmp.write_all(&html)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(cannot(&a.out))?;
        tmp.persist(&a.out).map_err(|e| cannot(&a.out)(e.error))?;
        println!("wrote {} ({} bytes, html)", a.out.display(), html.len());
        return Ok(());
    }
    let browser = chromium().ok_or(CliError::NoChromium)?;
    let work = tempfile::tempdir().map_err(cannot(&a.out))?;
    let src = work.path().join("print.html");
    std::fs::write(&src, &html).map_err(cannot(&src))?;
    let target = work.path().join("print.pdf");
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
        ])
        .arg(format!(
            "--user-data-dir={}",
            work.path().join("profile").display()
        ))
        .arg(format!("--print-to-pdf={}", target.display()))
        .arg(format!("file://{}", src.display()))
        .output()
        .map_err(|source| CliError::Chromium {
            browser: browser.clone(),
            source,
        })?;
    if !target.is_file() {
        return Err(CliError::NoPdf {
            browser,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let bytes = std::fs::read(&target).map_err(cannot(&target))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&parent).map_err(cannot(&a.out))?;
    tmp.write_all(&bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(cannot(&a.out))?;
    tmp.persist(&a.out).map_err(|e| cannot(&a.out)(e.error))?;
    println!("wrote {} ({} bytes, pdf)", a.out.display(), bytes.len());
    Ok(())
}

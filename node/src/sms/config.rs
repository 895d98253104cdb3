//! The SMS daemon's own configuration file (gammu-smsdrc, INI): the folders of its
//! files backend, checked before the node starts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What the gateway needs from the daemon's configuration.
#[derive(Debug, Clone)]
pub struct Smsdrc {
    /// The configuration file itself (also given to `gammu-smsd-monitor`).
    pub path: PathBuf,
    /// Where the daemon files received texts.
    pub inbox: PathBuf,
    /// Where the daemon takes texts to send.
    pub outbox: PathBuf,
    /// Where the daemon moves sent texts (`None`: it deletes them).
    pub sent: Option<PathBuf>,
    /// Where the daemon moves texts it could not send.
    pub error: Option<PathBuf>,
    /// `InboxFormat` as written (`None`: not set).
    pub inbox_format: Option<String>,
}

/// The sub-folder of the inbox that handled texts are moved into.
pub const HANDLED: &str = "aidmesh-handled";

fn refuse(path: &Path, why: impl std::fmt::Display) -> String {
    format!("--sms-gateway {}: {why}", path.display())
}

/// Parses INI text into section → key → value, sections and keys lowercased.
fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_lowercase();
            out.entry(section.clone()).or_default();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"').to_string();
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_lowercase(), v);
        }
    }
    out
}

/// Reads and checks the daemon's configuration: it must exist, have an `[smsd]`
/// section with `Service = files`, name absolute `InboxPath` and `OutboxPath` this
/// node can read and write, and not use `InboxFormat = detail`. The error says which.
pub fn read(path: &Path) -> Result<Smsdrc, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        refuse(
            path,
            format!("cannot read the SMS daemon's configuration ({e}); give the file gammu-smsd runs with, e.g. /etc/gammu-smsdrc"),
        )
    })?;
    let ini = parse_ini(&text);
    let Some(smsd) = ini.get("smsd") else {
        return Err(refuse(
            path,
            "has no [smsd] section; is it gammu-smsd's configuration (see docs/sms.md)?",
        ));
    };
    match smsd.get("service").map(|s| s.to_lowercase()) {
        Some(s) if s == "files" => {}
        Some(other) => {
            return Err(refuse(
                path,
                format!("Service = {other}: aidmesh works with the files backend only; set Service = files in [smsd] (see docs/sms.md)"),
            ))
        }
        None => {
            return Err(refuse(
                path,
                "sets no Service in [smsd]; set Service = files (see docs/sms.md)",
            ))
        }
    }
    let folder = |key: &str, name: &str| -> Result<Option<PathBuf>, String> {
        let Some(v) = smsd.get(key).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let p = PathBuf::from(v);
        if !p.is_absolute() {
            return Err(refuse(
                path,
                format!("{name} = {v} is relative (to wherever the daemon was started); give an absolute path"),
            ));
        }
        Ok(Some(p))
    };
    let inbox = folder("inboxpath", "InboxPath")?.ok_or_else(|| {
        refuse(
            path,
            "sets no InboxPath in [smsd]; set it, e.g. InboxPath = /var/spool/gammu/inbox/",
        )
    })?;
    let outbox = folder("outboxpath", "OutboxPath")?.ok_or_else(|| {
        refuse(
            path,
            "sets no OutboxPath in [smsd]; set it, e.g. OutboxPath = /var/spool/gammu/outbox/",
        )
    })?;
    let sent = folder("sentsmspath", "SentSMSPath")?;
    let error = folder("errorsmspath", "ErrorSMSPath")?.or_else(|| sent.clone());
    let inbox_format = smsd.get("inboxformat").map(|f| f.to_lowercase());
    if inbox_format.as_deref() == Some("detail") {
        return Err(refuse(
            path,
            "InboxFormat = detail (backup files) is not read by aidmesh; set InboxFormat = unicode",
        ));
    }
    check_folder(path, "InboxPath", &inbox)?;
    check_folder(path, "OutboxPath", &outbox)?;
    for (name, p) in [("SentSMSPath", &sent), ("ErrorSMSPath", &error)] {
        if let Some(p) = p {
            std::fs::read_dir(p).map_err(|e| {
                refuse(
                    path,
                    format!("{name} {}: cannot read it ({e})", p.display()),
                )
            })?;
        }
    }
    let handled = inbox.join(HANDLED);
    std::fs::create_dir_all(&handled).map_err(|e| {
        refuse(
            path,
            format!("cannot make {} for handled texts ({e})", handled.display()),
        )
    })?;
    Ok(Smsdrc {
        path: path.to_path_buf(),
        inbox,
        outbox,
        sent,
        error,
        inbox_format,
    })
}

/// A folder the node must list, create files in and remove them from.
fn check_folder(cfg: &Path, name: &str, dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        refuse(
            cfg,
            format!("{name} {}: {e}; make it, owned by the daemon's user, and let the node's user write in it (see docs/sms.md)", dir.display()),
        )
    })?;
    if !meta.is_dir() {
        return Err(refuse(
            cfg,
            format!("{name} {} is not a folder", dir.display()),
        ));
    }
    std::fs::read_dir(dir).map_err(|e| {
        refuse(
            cfg,
            format!("{name} {}: cannot list it ({e})", dir.display()),
        )
    })?;
    // A dot file: the daemon takes only IN* / OUT* names.
    let probe = dir.join(format!(".aidmesh-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            refuse(
                cfg,
                format!("{name} {}: this node cannot write in it ({e}); add the node's user to the daemon's group and make the folder group-writable (see docs/sms.md)", dir.display()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, smsd: &str) -> PathBuf {
        let p = dir.join("smsdrc");
        std::fs::write(&p, format!("[gammu]\nmodel = dummy\n\n{smsd}")).unwrap();
        p
    }

    #[test]
    fn a_files_backend_with_usable_folders_is_read() {
        let d = tempfile::tempdir().unwrap();
        for f in ["in", "out", "sent"] {
            std::fs::create_dir(d.path().join(f)).unwrap();
        }
        let p = write(
            d.path(),
            &format!(
                "[SMSD]\nService = FILES\n; comment\nInboxPath = {0}/in/\nOutboxPath = \"{0}/out/\"\nSentSMSPath = {0}/sent/\nInboxFormat = unicode\n",
                d.path().display()
            ),
        );
        let c = read(&p).unwrap();
        assert_eq!(c.inbox, d.path().join("in/"));
        assert_eq!(c.outbox, d.path().join("out/"));
        assert_eq!(c.error, c.sent);
        assert!(d.path().join("in").join(HANDLED).is_dir());
    }

    #[test]
    fn each_unusable_config_is_refused_saying_why() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("in")).unwrap();
        let dir = d.path().display();
        let cases = [
            ("", "no [smsd] section"),
            ("[smsd]\nservice = sql\n", "Service = sql"),
            ("[smsd]\ninboxpath = /x/\n", "sets no Service"),
            ("[smsd]\nservice = files\noutboxpath = /x/\n", "sets no InboxPath"),
            ("[smsd]\nservice = files\ninboxpath = in/\noutboxpath = /x/\n", "is relative"),
            (&format!("[smsd]\nservice = files\ninboxpath = {dir}/in/\n"), "sets no OutboxPath"),
            (&format!("[smsd]\nservice = files\ninboxpath = {dir}/in/\noutboxpath = {dir}/nowhere/\n"), "OutboxPath"),
            (&format!("[smsd]\nservice = files\ninboxpath = {dir}/in/\noutboxpath = {dir}/in/\ninboxformat = detail\n"), "InboxFormat = detail"),
        ];
        for (smsd, says) in cases {
            let p = write(d.path(), smsd);
            let e = read(&p).unwrap_err();
            assert!(e.contains(says), "{smsd:?}: {e}");
        }
        let e = read(&d.path().join("missing")).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }
}

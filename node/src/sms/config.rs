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

/// Why the daemon's configuration cannot be used; each says what to fix. `config` is
/// the file given to `--sms-gateway`, `key` the setting (`InboxPath` ...).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read (missing, no permission).
    #[error("--sms-gateway {}: cannot read the SMS daemon's configuration ({source}); give the file gammu-smsd runs with, e.g. /etc/gammu-smsdrc", .config.display())]
    Unreadable {
        config: PathBuf,
        source: std::io::Error,
    },
    /// No `[smsd]` section.
    #[error("--sms-gateway {}: has no [smsd] section; is it gammu-smsd's configuration (see docs/sms.md)?", .config.display())]
    NoSmsdSection { config: PathBuf },
    /// `Service` is not `files`.
    #[error("--sms-gateway {}: Service = {service}: aidmesh works with the files backend only; set Service = files in [smsd] (see docs/sms.md)", .config.display())]
    NotFiles { config: PathBuf, service: String },
    /// No `Service` at all.
    #[error("--sms-gateway {}: sets no Service in [smsd]; set Service = files (see docs/sms.md)", .config.display())]
    NoService { config: PathBuf },
    /// `InboxPath` or `OutboxPath` not set.
    #[error("--sms-gateway {}: sets no {key} in [smsd]; set it, e.g. {key} = {example}", .config.display())]
    MissingPath {
        config: PathBuf,
        key: &'static str,
        example: &'static str,
    },
    /// A folder given relative to wherever the daemon was started.
    #[error("--sms-gateway {}: {key} = {value} is relative (to wherever the daemon was started); give an absolute path", .config.display())]
    RelativePath {
        config: PathBuf,
        key: &'static str,
        value: String,
    },
    /// `InboxFormat = detail`, which aidmesh does not read.
    #[error("--sms-gateway {}: InboxFormat = detail (backup files) is not read by aidmesh; set InboxFormat = unicode", .config.display())]
    DetailInboxFormat { config: PathBuf },
    /// A folder that does not exist (or cannot be looked at).
    #[error("--sms-gateway {}: {key} {}: {source}; make it, owned by the daemon's user, and let the node's user write in it (see docs/sms.md)", .config.display(), .dir.display())]
    FolderMissing {
        config: PathBuf,
        key: &'static str,
        dir: PathBuf,
        source: std::io::Error,
    },
    /// Not a folder.
    #[error("--sms-gateway {}: {key} {} is not a folder", .config.display(), .dir.display())]
    NotAFolder {
        config: PathBuf,
        key: &'static str,
        dir: PathBuf,
    },
    /// A folder this node cannot list (inbox, outbox: "list"; sent, error: "read").
    #[error("--sms-gateway {}: {key} {}: cannot {verb} it ({source})", .config.display(), .dir.display())]
    FolderNotReadable {
        config: PathBuf,
        key: &'static str,
        dir: PathBuf,
        verb: &'static str,
        source: std::io::Error,
    },
    /// A folder this node cannot create and remove files in.
    #[error("--sms-gateway {}: {key} {}: this node cannot write in it ({source}); add the node's user to the daemon's group and make the folder group-writable (see docs/sms.md)", .config.display(), .dir.display())]
    FolderNotWritable {
        config: PathBuf,
        key: &'static str,
        dir: PathBuf,
        source: std::io::Error,
    },
    /// The inbox's sub-folder for handled texts cannot be made.
    #[error("--sms-gateway {}: cannot make {} for handled texts ({source})", .config.display(), .dir.display())]
    HandledFolder {
        config: PathBuf,
        dir: PathBuf,
        source: std::io::Error,
    },
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
pub fn read(path: &Path) -> Result<Smsdrc, ConfigError> {
    let config = || path.to_path_buf();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
        config: config(),
        source,
    })?;
    let ini = parse_ini(&text);
    let Some(smsd) = ini.get("smsd") else {
        return Err(ConfigError::NoSmsdSection { config: config() });
    };
    match smsd.get("service").map(|s| s.to_lowercase()) {
        Some(s) if s == "files" => {}
        Some(service) => {
            return Err(ConfigError::NotFiles {
                config: config(),
                service,
            })
        }
        None => return Err(ConfigError::NoService { config: config() }),
    }
    let folder = |key: &'static str| -> Result<Option<PathBuf>, ConfigError> {
        let Some(v) = smsd.get(&key.to_lowercase()).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let p = PathBuf::from(v);
        if !p.is_absolute() {
            return Err(ConfigError::RelativePath {
                config: config(),
                key,
                value: v.clone(),
            });
        }
        Ok(Some(p))
    };
    let required = |key: &'static str, example: &'static str| {
        folder(key)?.ok_or(ConfigError::MissingPath {
            config: config(),
            key,
            example,
        })
    };
    let inbox = required("InboxPath", "/var/spool/gammu/inbox/")?;
    let outbox = required("OutboxPath", "/var/spool/gammu/outbox/")?;
    let sent = folder("SentSMSPath")?;
    let error = folder("ErrorSMSPath")?.or_else(|| sent.clone());
    let inbox_format = smsd.get("inboxformat").map(|f| f.to_lowercase());
    if inbox_format.as_deref() == Some("detail") {
        return Err(ConfigError::DetailInboxFormat { config: config() });
    }
    check_folder(path, "InboxPath", &inbox)?;
    check_folder(path, "OutboxPath", &outbox)?;
    for (key, p) in [("SentSMSPath", &sent), ("ErrorSMSPath", &error)] {
        if let Some(p) = p {
            std::fs::read_dir(p).map_err(|source| ConfigError::FolderNotReadable {
                config: config(),
                key,
                dir: p.clone(),
                verb: "read",
                source,
            })?;
        }
    }
    let handled = inbox.join(HANDLED);
    std::fs::create_dir_all(&handled).map_err(|source| ConfigError::HandledFolder {
        config: config(),
        dir: handled.clone(),
        source,
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
fn check_folder(cfg: &Path, key: &'static str, dir: &Path) -> Result<(), ConfigError> {
    let meta = std::fs::metadata(dir).map_err(|source| ConfigError::FolderMissing {
        config: cfg.to_path_buf(),
        key,
        dir: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ConfigError::NotAFolder {
            config: cfg.to_path_buf(),
            key,
            dir: dir.to_path_buf(),
        });
    }
    std::fs::read_dir(dir).map_err(|source| ConfigError::FolderNotReadable {
        config: cfg.to_path_buf(),
        key,
        dir: dir.to_path_buf(),
        verb: "list",
        source,
    })?;
    // A dot file: the daemon takes only IN* / OUT* names.
    let probe = dir.join(format!(".aidmesh-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| ConfigError::FolderNotWritable {
            config: cfg.to_path_buf(),
            key,
            dir: dir.to_path_buf(),
            source,
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
            let e = read(&p).unwrap_err().to_string();
            assert!(e.contains(says), "{smsd:?}: {e}");
        }
        let e = read(&d.path().join("missing")).unwrap_err();
        assert!(matches!(e, ConfigError::Unreadable { .. }), "{e:?}");
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}

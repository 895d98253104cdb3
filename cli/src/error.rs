//! [`CliError`]: why a command failed, by kind, so a caller can tell a node that is not
//! running from one that refused the request or a file that could not be written. Made
//! into text only in `main`, where it is printed after `error: ` (exit code 1).

use std::fmt;
use std::path::{Path, PathBuf};

use aidmesh_node::node::NodeError;

/// Reading or writing, in "cannot read/write FILE" messages.
#[derive(Debug, Clone, Copy)]
pub enum FileOp {
    /// Reading.
    Read,
    /// Writing.
    Write,
}

/// Why a command failed: a failure the user can act on.
#[derive(Debug)]
pub enum CliError {
    /// No node answers for this data directory (none started, or one was killed).
    NotRunning {
        /// The data directory.
        dir: PathBuf,
    },
    /// The node's address file belongs to another user (the packaged hub's).
    NotPermitted {
        /// The address file.
        file: PathBuf,
    },
    /// The node could not be reached.
    Unreachable(ureq::Error),
    /// The node answered something that is not JSON.
    Unreadable {
        /// The HTTP status it answered with.
        status: ureq::http::StatusCode,
        /// Why the body did not read.
        source: ureq::Error,
    },
    /// The node refused the request.
    Refused {
        /// The HTTP status.
        status: ureq::http::StatusCode,
        /// The node's explanation, if it gave one.
        detail: Option<String>,
    },
    /// A file answer (an export, a printout) broke off while being read.
    AnswerCut(ureq::Error),
    /// A download (a bundle) broke off.
    DownloadCut(std::io::Error),
    /// A CAP file larger than the hub reads (it would stop reading: a broken pipe).
    CapTooBig {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// Setting up or running the node failed.
    Node(NodeError),
    /// A value given on the command line was refused by the node's rules.
    Input(aidmesh_node::doors::input::InputError),
    /// The typed passphrase is not six words of the list.
    Passphrase(aidmesh_protocol::community::PassphraseProblem),
    /// A command-line value is not valid.
    BadArg {
        /// The option, e.g. `--listen`.
        flag: &'static str,
        /// The value given.
        value: String,
        /// Why not.
        reason: String,
        /// What to give instead (may be empty).
        hint: &'static str,
    },
    /// `aidmesh list` of something that is not a list.
    NotAList(String),
    /// A file could not be read or written.
    File {
        /// Reading or writing.
        op: FileOp,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
        /// Advice after the error (may be empty).
        hint: &'static str,
    },
    /// The directory a file was to be written in is not there.
    NoDirectory {
        /// The file.
        path: PathBuf,
        /// Its directory.
        parent: PathBuf,
        /// Advice after it (may be empty).
        hint: &'static str,
    },
    /// Standard output could not take the export.
    Stdout(std::io::Error),
    /// Standard input could not be read (an answer to a question).
    Stdin(std::io::Error),
    /// The input ended before a question (`join`'s) was answered.
    NoAnswer {
        /// What was asked.
        question: &'static str,
    },
    /// The async runtime could not start.
    Runtime(std::io::Error),
    /// The volunteer PIN was given both directly and in a file.
    PinTwice {
        /// The PIN file.
        file: PathBuf,
    },
    /// The volunteer PIN file could not be read.
    PinFile {
        /// The PIN file.
        file: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `aidmesh passphrase` on a directory that holds no node.
    NoNode {
        /// The data directory.
        dir: PathBuf,
    },
    /// The packaged hub's directory, and this user may not write to it.
    SystemDirReadOnly {
        /// The data directory.
        dir: PathBuf,
        /// The settings file that named it (`/etc/default/aidmesh`).
        named_in: &'static str,
    },
    /// A welfare check-in without its outcome.
    NoOutcome,
    /// A PDF was asked for and no Chromium was found.
    NoChromium,
    /// Chromium could not be started.
    Chromium {
        /// The browser binary.
        browser: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Chromium ran but wrote no PDF.
    NoPdf {
        /// The browser binary.
        browser: PathBuf,
        /// How it exited.
        status: std::process::ExitStatus,
        /// What it said.
        stderr: String,
    },
    /// `aidmesh demo` failed.
    Demo(DemoError),
    /// A map was refused, or could not be installed, read or removed.
    Map(aidmesh_node::node::map::MapFileError),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::NotRunning { dir } => write!(
                f,
                "no node is running for {dir}.\nStart one with:  aidmesh --data-dir {dir} up",
                dir = dir.display()
            ),
            CliError::NotPermitted { file } => write!(
                f,
                "cannot read {}: permission denied. This is another user's node: run the command with sudo, or join its group (sudo adduser $USER aidmesh, then log in again)",
                file.display()
            ),
            CliError::Unreachable(e) => write!(f, "the node did not answer: {e}"),
            CliError::Unreadable { status, source } => {
                write!(f, "the node sent an unreadable answer ({status}): {source}")
            }
            CliError::Refused {
                detail: Some(detail),
                ..
            } => f.write_str(detail),
            CliError::Refused {
                status,
                detail: None,
            } => write!(f, "the node answered {status}"),
            CliError::AnswerCut(e) => write!(f, "the node's answer broke off: {e}"),
            CliError::DownloadCut(e) => write!(f, "the download broke off: {e}"),
            CliError::CapTooBig { path, size } => {
                let max = aidmesh_node::doors::cap::MAX_CAP_BYTES as u64;
                write!(
                    f,
                    "{} is {}; a CAP alert is at most {} ({max} bytes): give one alert's file, not a feed or an archive",
                    path.display(),
                    crate::output::human_size(*size),
                    crate::output::human_size(max)
                )
            }
            CliError::Node(e) => e.fmt(f),
            CliError::Map(e) => e.fmt(f),
            CliError::Input(e) => e.fmt(f),
            CliError::Passphrase(e) => e.fmt(f),
            CliError::BadArg {
                flag,
                value,
                reason,
                hint,
            } => write!(f, "{flag} '{value}' is not valid: {reason}{hint}"),
            CliError::NotAList(what) => {
                write!(f, "'{what}' is not a list; use needs, offers or all")
            }
            CliError::File {
                op,
                path,
                source,
                hint,
            } => {
                let op = match op {
                    FileOp::Read => "read",
                    FileOp::Write => "write",
                };
                write!(f, "cannot {op} {}: {source}{hint}", path.display())
            }
            CliError::NoDirectory { path, parent, hint } => write!(
                f,
                "cannot write {}: there is no directory {}{hint}",
                path.display(),
                parent.display()
            ),
            CliError::Stdout(e) => write!(f, "cannot write the export: {e}"),
            CliError::Stdin(e) => write!(f, "cannot read the answer: {e}"),
            CliError::NoAnswer { question } => write!(
                f,
                "no {question} typed: run `aidmesh join` again with the card at hand"
            ),
            CliError::Runtime(e) => write!(f, "cannot start: {e}"),
            CliError::PinTwice { file } => write!(
                f,
                "the volunteer PIN is given twice (--volunteer-pin or AIDMESH_VOLUNTEER_PIN, and \
                 --volunteer-pin-file {}): give it once",
                file.display()
            ),
            CliError::PinFile { file, source } => write!(
                f,
                "cannot read the volunteer PIN from {}: {source}; write the PIN on the first line of \
                 that file, readable by this user only (chmod 600)",
                file.display()
            ),
            CliError::NoNode { dir } => write!(
                f,
                "no node in {}; start a community with `aidmesh start --community NAME` or join one with `aidmesh join`",
                dir.display()
            ),
            CliError::SystemDirReadOnly { dir, named_in } => write!(
                f,
                "cannot write to {}, the hub's data directory (from {named_in}): run this with sudo",
                dir.display(),
            ),
            CliError::NoOutcome => f.write_str(
                "say what you found: --safe, --needs-help TEXT, --no-answer, --not-home or --moved TEXT",
            ),
            CliError::NoChromium => f.write_str(
                "a PDF needs Chromium, and none was found (chromium, chromium-browser, \
                 google-chrome; or set CHROMIUM). Write --out FILE.html and print that instead",
            ),
            CliError::Chromium { browser, source } => {
                write!(f, "cannot run {}: {source}", browser.display())
            }
            CliError::NoPdf {
                browser,
                status,
                stderr,
            } => write!(
                f,
                "{} made no PDF ({status}): {}",
                browser.display(),
                stderr.trim()
            ),
            CliError::Demo(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CliError {}

/// Why `aidmesh demo` failed (its hubs are temporary, on this machine).
#[derive(Debug)]
pub enum DemoError {
    /// A demo hub could not be reached.
    NoAnswer(ureq::Error),
    /// A demo hub answered a GET with something that is not JSON.
    BadJson(ureq::Error),
    /// A demo hub answered a POST with something that is not JSON.
    BadBody(ureq::Error),
    /// A demo hub refused a post; its `detail`.
    Refused(serde_json::Value),
    /// Something the tour waits for did not happen in time.
    TimedOut(String),
    /// The async runtime could not start.
    Runtime(std::io::Error),
    /// A demo hub's address did not parse.
    BadAddress,
    /// A demo hub did not start in time.
    HubDidNotStart(&'static str),
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoError::NoAnswer(e) => write!(f, "demo node did not answer: {e}"),
            DemoError::BadJson(e) => write!(f, "demo node sent bad JSON: {e}"),
            DemoError::BadBody(e) => e.fmt(f),
            DemoError::Refused(detail) => write!(f, "demo post refused: {detail}"),
            DemoError::TimedOut(what) => write!(f, "demo: timed out waiting for {what}"),
            DemoError::Runtime(e) => e.fmt(f),
            DemoError::BadAddress => f.write_str("bad demo address"),
            DemoError::HubDidNotStart(name) => write!(f, "demo hub '{name}' did not start"),
        }
    }
}

impl From<DemoError> for CliError {
    fn from(e: DemoError) -> Self {
        CliError::Demo(e)
    }
}

impl From<aidmesh_node::node::map::MapFileError> for CliError {
    fn from(e: aidmesh_node::node::map::MapFileError) -> Self {
        CliError::Map(e)
    }
}

impl From<NodeError> for CliError {
    fn from(e: NodeError) -> Self {
        CliError::Node(e)
    }
}

impl From<aidmesh_node::doors::input::InputError> for CliError {
    fn from(e: aidmesh_node::doors::input::InputError) -> Self {
        CliError::Input(e)
    }
}

impl From<aidmesh_protocol::community::PassphraseProblem> for CliError {
    fn from(e: aidmesh_protocol::community::PassphraseProblem) -> Self {
        CliError::Passphrase(e)
    }
}

impl CliError {
    /// "cannot write PATH: ERROR" followed by `hint`.
    pub fn write(path: &Path, hint: &'static str) -> impl FnOnce(std::io::Error) -> Self + use<> {
        let path = path.to_path_buf();
        move |source| CliError::File {
            op: FileOp::Write,
            path,
            source,
            hint,
        }
    }

    /// "cannot read PATH: ERROR".
    pub fn read(path: &Path) -> impl FnOnce(std::io::Error) -> Self + use<> {
        let path = path.to_path_buf();
        move |source| CliError::File {
            op: FileOp::Read,
            path,
            source,
            hint: "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_they_did_when_they_were_strings() {
        let dir = PathBuf::from("/srv/aid");
        assert_eq!(
            CliError::NotRunning { dir: dir.clone() }.to_string(),
            "no node is running for /srv/aid.\nStart one with:  aidmesh --data-dir /srv/aid up"
        );
        assert_eq!(
            CliError::BadArg {
                flag: "--peer",
                value: "x".into(),
                reason: "invalid multiaddr".into(),
                hint: "; give the other hub's address like /ip4/192.168.1.20/tcp/4610",
            }
            .to_string(),
            "--peer 'x' is not valid: invalid multiaddr; give the other hub's address like /ip4/192.168.1.20/tcp/4610"
        );
        let gone = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            CliError::write(
                Path::new("/mnt/a.csv"),
                ". Is the directory there and writable?"
            )(gone)
            .to_string(),
            format!(
                "cannot write /mnt/a.csv: {}. Is the directory there and writable?",
                std::io::Error::from(std::io::ErrorKind::NotFound)
            )
        );
        assert_eq!(
            CliError::NoDirectory {
                path: "/mnt/usb/a.csv".into(),
                parent: "/mnt/usb".into(),
                hint: "; is the USB stick mounted?",
            }
            .to_string(),
            "cannot write /mnt/usb/a.csv: there is no directory /mnt/usb; is the USB stick mounted?"
        );
        assert_eq!(
            CliError::Refused {
                status: ureq::http::StatusCode::BAD_GATEWAY,
                detail: None,
            }
            .to_string(),
            "the node answered 502 Bad Gateway"
        );
        assert_eq!(
            CliError::Refused {
                status: ureq::http::StatusCode::BAD_REQUEST,
                detail: Some("title is empty".into()),
            }
            .to_string(),
            "title is empty"
        );
        assert_eq!(
            CliError::Node(NodeError::BadCommunityName).to_string(),
            "the community name must be 1 to 64 printable characters"
        );
    }
}

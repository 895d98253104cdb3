//! The static peers file in the data directory: one multiaddr per line, `#` comments,
//! read at start and added to `--peer`.

use std::path::{Path, PathBuf};

use libp2p::Multiaddr;
use thiserror::Error;

use super::NodeError;

/// File in the data directory listing static peers, one multiaddr per line (`#` starts
/// a comment). Added to `--peer`.
pub const PEERS_FILE: &str = "peers";

/// A line of the peers file that is not a peer's address.
#[derive(Debug, Error)]
pub enum PeersFileError {
    /// The line does not parse as a multiaddr.
    #[error("{}, line {line}: '{text}' is not a peer address ({source}); e.g. /ip4/192.168.2.10/tcp/4610", path.display())]
    NotAnAddress {
        /// The peers file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// The line, without its comment.
        text: String,
        /// Why it does not parse.
        source: libp2p::multiaddr::Error,
    },
    /// A multiaddr, but not one a peer can be dialled at over TCP.
    #[error("{}, line {line}: '{text}' is not a TCP address of a peer; e.g. /ip4/192.168.2.10/tcp/4610", path.display())]
    NotTcp {
        /// The peers file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// The line, without its comment.
        text: String,
    },
}

/// Reads the static peers file, if there is one.
pub fn read_peers_file(dir: &Path) -> Result<Vec<Multiaddr>, NodeError> {
    let path = dir.join(PEERS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(NodeError::Io {
                what: "cannot read",
                path,
                source,
            })
        }
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let addr: Multiaddr = line
            .parse()
            .map_err(|source| PeersFileError::NotAnAddress {
                path: path.clone(),
                line: n + 1,
                text: line.to_string(),
                source,
            })?;
        if !crate::net::dialable(&addr) {
            return Err(PeersFileError::NotTcp {
                path,
                line: n + 1,
                text: line.to_string(),
            }
            .into());
        }
        out.push(addr);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_file_lines_comments_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_peers_file(dir.path()).unwrap().is_empty());
        std::fs::write(
            dir.path().join(PEERS_FILE),
            "# the school hub\n/ip4/192.168.2.10/tcp/4610\n\n/ip4/10.0.0.5/tcp/4610 # radio link\n",
        )
        .unwrap();
        assert_eq!(read_peers_file(dir.path()).unwrap().len(), 2);
        std::fs::write(
            dir.path().join(PEERS_FILE),
            "/ip4/10.0.0.5/tcp/4610\nnonsense\n",
        )
        .unwrap();
        let e = read_peers_file(dir.path()).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("nonsense"), "{e}");
        assert!(matches!(
            read_peers_file(dir.path()),
            Err(NodeError::PeersFile(PeersFileError::NotAnAddress {
                line: 2,
                ..
            }))
        ));
    }
}

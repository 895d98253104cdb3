//! The node in its data directory: identity and community ([`Profile`], [`init`],
//! [`prepare`]), the community card file, the pid file, and opening the database.

use std::path::{Path, PathBuf};

use aidmesh_protocol::community::{derive_key, passphrase_from_entropy};

use super::NodeError;
use crate::store::{Store, StoreError};

/// Community created by `aidmesh up` on an empty data directory.
pub const DEFAULT_COMMUNITY: &str = "neighbourhood";
/// File in the data directory holding the process id of the node running on it.
pub const PID_FILE: &str = "node.pid";
/// File in the data directory holding the community card (name, then passphrase),
/// readable only by its owner, so `aidmesh passphrase` can show it while the node runs
/// and holds the database. The database already keeps the same words in this directory.
pub const CARD_FILE: &str = "community.card";
/// Meta key marking a community that `aidmesh up` created by itself on an empty
/// directory: until the node holds any event, `join` or `start` may replace it.
const AUTO_CREATED: &str = "auto_created";

/// The node's identity and community, as stored in the data directory.
#[derive(Clone)]
pub struct Profile {
    /// Ed25519 seed: signs events and is the libp2p identity.
    pub seed: [u8; 32],
    /// Community name.
    pub community: String,
    /// Community passphrase (kept so a coordinator can hand it on).
    pub passphrase: String,
    /// Derived pre-shared key.
    pub psk: [u8; 32],
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed or the key.
        f.debug_struct("Profile")
            .field("community", &self.community)
            .finish_non_exhaustive()
    }
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join("db")
}

fn meta_str(store: &Store, key: &str) -> Result<Option<String>, StoreError> {
    Ok(store
        .meta(key)?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// Reads the profile, if the directory was initialised.
pub fn load_profile(store: &Store) -> Result<Option<Profile>, NodeError> {
    let (Some(seed), Some(psk)) = (store.meta("seed")?, store.meta("psk")?) else {
        return Ok(None);
    };
    let bad = |what: &'static str| NodeError::Damaged {
        db: store.path().to_path_buf(),
        what,
    };
    Ok(Some(Profile {
        seed: seed.as_slice().try_into().map_err(|_| bad("identity"))?,
        psk: psk
            .as_slice()
            .try_into()
            .map_err(|_| bad("community key"))?,
        community: meta_str(store, "community")?.unwrap_or_default(),
        passphrase: meta_str(store, "passphrase")?.unwrap_or_default(),
    }))
}

fn random<const N: usize>() -> Result<[u8; N], NodeError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(NodeError::NoRandom)?;
    Ok(b)
}

/// Creates an identity and joins (with `passphrase`) or creates (without) a community.
pub fn init(dir: &Path, community: &str, passphrase: Option<&str>) -> Result<Profile, NodeError> {
    std::fs::create_dir_all(dir).map_err(|source| NodeError::Io {
        what: "cannot create the data directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let store = open_store(dir)?;
    init_store(&store, dir, community, passphrase)
}

/// Makes sure `dir` holds a node before `run`: on an empty directory, creates one in a
/// new community [`DEFAULT_COMMUNITY`] and returns its profile (so the caller can show
/// the passphrase even if the node then fails to start, e.g. on a busy port). Never
/// where a data directory was moved aside (see [`check_not_moved_aside`]).
pub fn prepare(dir: &Path) -> Result<Option<Profile>, NodeError> {
    if !db_path(dir).exists() {
        // Before anything is made here.
        check_not_moved_aside(dir)?;
    }
    std::fs::create_dir_all(dir).map_err(|source| NodeError::Io {
        what: "cannot create the data directory",
        path: dir.to_path_buf(),
        source,
    })?;
    // Settings only: the node's start opens the store again, in full.
    let store = open_store_as(dir, Store::open_settings)?;
    if load_profile(&store)?.is_some() {
        return Ok(None);
    }
    check_not_moved_aside(dir)?;
    let p = init_store(&store, dir, DEFAULT_COMMUNITY, None)?;
    store.set_meta(AUTO_CREATED, b"1")?;
    Ok(Some(p))
}

/// Opens the directory's database; if another live process holds it, says so (a node
/// already running). On a full disk it does not open it at all (opening writes, and a
/// write cut short damaged the database): it says to free space or move the whole
/// directory, rather than suggesting the database is damaged.
pub(super) fn open_store(dir: &Path) -> Result<Store, NodeError> {
    open_store_as(dir, Store::open)
}

/// [`open_store`] for the node's start: with its start file
/// ([`Store::open_with_start_file`]).
pub(super) fn open_store_to_run(dir: &Path) -> Result<Store, NodeError> {
    open_store_as(dir, Store::open_with_start_file)
}

fn open_store_as(
    dir: &Path,
    open: fn(&Path) -> Result<Store, StoreError>,
) -> Result<Store, NodeError> {
    let full = |free: u64| NodeError::DiskFull {
        dir: dir.to_path_buf(),
        free,
    };
    let existing = if dir.exists() { dir } else { Path::new(".") };
    let free = crate::disk::Space::of(existing).map(|s| s.free_bytes).ok();
    if let Some(free) = free.filter(|&f| f < crate::disk::OPEN_FLOOR_BYTES) {
        return Err(match running_pid(dir) {
            Some(pid) => NodeError::AlreadyRunning { pid },
            None => full(free),
        });
    }
    open(&db_path(dir)).map_err(|e| {
        if let Some(pid) = running_pid(dir) {
            return NodeError::AlreadyRunning { pid };
        }
        match &e {
            StoreError::Open {
                source: sled::Error::Io(io),
                ..
            } if matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) => {
                full(free.unwrap_or(0))
            }
            _ => e.into(),
        }
    })
}

/// Whether `path` looks like an aidmesh data directory: it holds a community card or
/// a database directory.
pub(crate) fn is_data_dir(path: &Path) -> bool {
    path.join(CARD_FILE).is_file() || db_path(path).is_dir()
}

/// Refuses to let `up` make a community by itself in `dir` (which holds no node) where
/// a hub's data directory was moved aside: `dir` holds a community card (its database
/// is gone), or a directory beside it whose name contains `dir`'s name
/// (`aidmesh.old`, `old-aidmesh`, `aidmesh-full`...) is an aidmesh data directory.
/// `start` and `join` are not refused: they say what they make.
pub fn check_not_moved_aside(dir: &Path) -> Result<(), NodeError> {
    let refuse = |found: String| NodeError::MovedAside {
        dir: dir.to_path_buf(),
        found,
    };
    if dir.join(CARD_FILE).is_file() {
        return Err(refuse(format!(
            "{} is there but the database that belongs with it (db/, with this hub's identity) is not",
            dir.join(CARD_FILE).display()
        )));
    }
    let Some(name) = dir.file_name().map(|n| n.to_string_lossy().to_lowercase()) else {
        return Ok(());
    };
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let sibling = entry.file_name().to_string_lossy().to_lowercase();
        let path = entry.path();
        if sibling != name && sibling.contains(&name) && is_data_dir(&path) {
            return Err(refuse(format!(
                "{} beside it is an aidmesh data directory (moved aside?): it holds a hub's identity and community",
                path.display()
            )));
        }
    }
    Ok(())
}

/// The process id in the directory's pid file, if that process is alive and not us.
pub fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if pid == std::process::id() {
        return None;
    }
    let raw = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let alive = unsafe { libc::kill(raw, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    alive.then_some(pid)
}

/// The profile of the node in `dir` (whose database is `store`), made in a new
/// community [`DEFAULT_COMMUNITY`] if there is none yet (then returned twice: the second
/// says it was created); its card file written either way (directories made before the
/// card file existed get one now).
pub(super) fn load_or_create(
    store: &Store,
    dir: &Path,
) -> Result<(Profile, Option<Profile>), NodeError> {
    let (profile, created) = match load_profile(store)? {
        Some(p) => (p, None),
        None => {
            check_not_moved_aside(dir)?;
            let p = init_store(store, dir, DEFAULT_COMMUNITY, None)?;
            store.set_meta(AUTO_CREATED, b"1")?;
            (p.clone(), Some(p))
        }
    };
    write_card(dir, &profile)?;
    Ok((profile, created))
}

/// Writes this process's id into the directory's pid file ([`PID_FILE`]); returns
/// the file, for removal at the end.
pub(super) fn write_pid_file(dir: &Path) -> Result<PathBuf, NodeError> {
    let pid_file = dir.join(PID_FILE);
    std::fs::write(&pid_file, std::process::id().to_string()).map_err(|source| NodeError::Io {
        what: "cannot write",
        path: pid_file.clone(),
        source,
    })?;
    Ok(pid_file)
}

/// Writes the community card file (owner-only), see [`CARD_FILE`].
pub(super) fn write_card(dir: &Path, p: &Profile) -> Result<(), NodeError> {
    let path = dir.join(CARD_FILE);
    let io = |source| NodeError::Io {
        what: "cannot write",
        path: path.clone(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&path).map_err(io)?;
    std::io::Write::write_all(
        &mut f,
        format!("{}\n{}\n", p.community, p.passphrase).as_bytes(),
    )
    .map_err(io)
}

/// The community name and passphrase of the node in `dir`, read from the card file
/// (also while the node runs) or, failing that, from the database; `None` if the
/// directory holds no node.
pub fn community_card(dir: &Path) -> Result<Option<(String, String)>, NodeError> {
    if let Ok(text) = std::fs::read_to_string(dir.join(CARD_FILE)) {
        let mut lines = text.lines();
        if let (Some(c), Some(p)) = (lines.next(), lines.next()) {
            return Ok(Some((c.to_string(), p.to_string())));
        }
    }
    if !db_path(dir).exists() {
        return Ok(None);
    }
    let store = open_store(dir)?;
    Ok(load_profile(&store)?.map(|p| (p.community, p.passphrase)))
}

fn init_store(
    store: &Store,
    dir: &Path,
    community: &str,
    passphrase: Option<&str>,
) -> Result<Profile, NodeError> {
    let community = community.trim();
    if community.is_empty()
        || community.chars().count() > 64
        || community.chars().any(char::is_control)
    {
        return Err(NodeError::BadCommunityName);
    }
    if let Some(p) = load_profile(store)? {
        // A community `up` made by itself, before anything happened on it, may still
        // be replaced by the one the user meant to start or join.
        let replaceable = store.meta(AUTO_CREATED)?.as_deref() == Some(b"1") && store.is_empty();
        if !replaceable {
            return Err(NodeError::AlreadyInitialised {
                dir: dir.to_path_buf(),
                community: p.community,
            });
        }
        store.set_meta(AUTO_CREATED, b"0")?;
    }
    let passphrase = match passphrase {
        Some(p) if p.split_whitespace().count() < 3 => return Err(NodeError::ShortPassphrase),
        Some(p) => aidmesh_protocol::community::normalise_passphrase(p),
        None => passphrase_from_entropy(&random()?),
    };
    let profile = Profile {
        seed: random()?,
        psk: derive_key(community, &passphrase),
        community: community.to_string(),
        passphrase,
    };
    store.set_meta("community", profile.community.as_bytes())?;
    store.set_meta("passphrase", profile.passphrase.as_bytes())?;
    store.set_meta("psk", &profile.psk)?;
    // The seed last: its presence marks a complete initialisation.
    store.set_meta("seed", &profile.seed)?;
    write_card(dir, &profile)?;
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_makes_no_community_where_a_data_directory_was_moved_aside() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("aidmesh");
        // Nothing around: `up` may make one.
        assert!(check_not_moved_aside(&dir).is_ok());
        // A hub's directory moved aside beside it (`mv aidmesh aidmesh.old`).
        let aside = root.path().join("aidmesh.old");
        init(&aside, "Elm Street", None).unwrap();
        let e = check_not_moved_aside(&dir).unwrap_err().to_string();
        assert!(e.contains("aidmesh.old") && e.contains("join"), "{e}");
        // prepare refuses before it makes anything.
        assert!(prepare(&dir).is_err());
        assert!(!dir.exists(), "prepare made {}", dir.display());
        // A directory beside it whose name does not hold this one's: not a sign.
        std::fs::rename(&aside, root.path().join("hub-b")).unwrap();
        assert!(check_not_moved_aside(&dir).is_ok());
        // A community card without its database.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(CARD_FILE), "Elm Street\nwords\n").unwrap();
        let e = check_not_moved_aside(&dir).unwrap_err().to_string();
        assert!(e.contains(CARD_FILE), "{e}");
        // `init` (start, join) is deliberate and not refused.
        assert!(init(&dir, "Elm Street", None).is_ok());
        assert!(prepare(&dir).unwrap().is_none(), "a node is there now");
    }
}

//! Making a node: `start` (a new community), `join` (an existing one), `init` (for
//! scripts), and `passphrase` (showing the community card again).

use std::path::Path;

use aidmesh_node::node;

use crate::datadir::{check_system_dir, start_hint};
use crate::error::CliError;
use crate::output;

/// `aidmesh init`: joins with `passphrase` (not checked against the word list) or
/// creates a community.
pub(crate) fn init(
    dir: &Path,
    system: bool,
    community: &str,
    passphrase: Option<&str>,
) -> Result<(), CliError> {
    check_system_dir(dir, system)?;
    let p = node::init(dir, community, passphrase)?;
    println!("Node created in {}", dir.display());
    println!("Community: {}", p.community);
    if passphrase.is_none() {
        print!(
            "{}",
            output::passphrase("New community passphrase", &p.community, &p.passphrase)
        );
    }
    println!("{}", start_hint(dir, system));
    Ok(())
}

/// `aidmesh start`: a new community, and its card.
pub(crate) fn start(dir: &Path, system: bool, community: &str) -> Result<(), CliError> {
    check_system_dir(dir, system)?;
    let p = node::init(dir, community, None)?;
    println!(
        "New community '{}' started in {}",
        p.community,
        dir.display()
    );
    print!(
        "{}",
        output::passphrase("Community passphrase", &p.community, &p.passphrase)
    );
    println!("{}", start_hint(dir, system));
    println!(
        "Show this card again: aidmesh --data-dir {} passphrase",
        dir.display()
    );
    Ok(())
}

/// `aidmesh passphrase`: the community card again.
pub(crate) fn passphrase(dir: &Path) -> Result<(), CliError> {
    let Some((community, words)) = node::community_card(dir)? else {
        return Err(CliError::NoNode {
            dir: dir.to_path_buf(),
        });
    };
    print!(
        "{}",
        output::passphrase("Community passphrase", &community, &words)
    );
    Ok(())
}

/// Reads one line from standard input after printing `prompt`.
fn ask(prompt: &str) -> Result<String, CliError> {
    use std::io::Write;
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(CliError::Stdin)?;
    Ok(line.trim().to_string())
}

/// `aidmesh join`: checks the typed words against the list before anything is written,
/// so a typo is named at once rather than found as peers that never connect.
pub(crate) fn join(
    dir: &Path,
    community: Option<String>,
    passphrase: Option<String>,
    system: bool,
) -> Result<(), CliError> {
    check_system_dir(dir, system)?;
    let community = match community {
        Some(c) => c,
        None => ask("Community name (from the card): ")?,
    };
    let typed = match passphrase {
        Some(p) => p,
        None => ask("Passphrase (the six words from the card): ")?,
    };
    let words = aidmesh_protocol::community::check_passphrase(&typed)?;
    let p = node::init(dir, &community, Some(&words))?;
    println!("Joined community '{}' in {}", p.community, dir.display());
    println!("{}", start_hint(dir, system));
    println!(
        "It finds hubs on the same network by itself; for others add --peer /ip4/ADDRESS/tcp/4610"
    );
    Ok(())
}

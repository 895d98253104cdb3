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

/// Asks until `check` takes the answer, saying on stderr why it did not (issue 29: one
/// typo used to end `join`, and everything had to be typed again). At the end of the
/// input (Ctrl-D, or a script's last line) it gives up, naming `what` was not typed.
fn ask_again<T>(
    prompt: &str,
    what: &'static str,
    check: impl Fn(&str) -> Result<T, &'static str>,
) -> Result<T, CliError> {
    loop {
        let Some(answer) = ask_line(prompt)? else {
            return Err(CliError::NoAnswer { question: what });
        };
        match check(&answer) {
            Ok(v) => return Ok(v),
            Err(why) => eprintln!("{why}; type it again (Ctrl-C to stop)"),
        }
    }
}

/// One line of standard input after printing `prompt`; `None` at the end of the input.
fn ask_line(prompt: &str) -> Result<Option<String>, CliError> {
    use std::io::Write;
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let n = std::io::stdin()
        .read_line(&mut line)
        .map_err(CliError::Stdin)?;
    Ok((n > 0).then(|| line.trim().to_string()))
}

/// Asks for the six words until they pass the word list: a mistyped word is asked for
/// alone (the others are kept), a wrong count asks for all six again.
fn ask_words() -> Result<String, CliError> {
    use aidmesh_protocol::community::{check_passphrase, PassphraseProblem};
    const ALL: &str = "Passphrase (the six words from the card): ";
    let eof = || CliError::NoAnswer {
        question: "passphrase",
    };
    let mut typed = ask_line(ALL)?.ok_or_else(eof)?;
    loop {
        match check_passphrase(&typed) {
            Ok(words) => return Ok(words),
            Err(problem @ PassphraseProblem::UnknownWord { position, .. }) => {
                eprintln!("{problem}");
                let fix = ask_line(&format!(
                    "Word {position} again (or press Enter to type all six again): "
                ))?
                .ok_or_else(eof)?;
                let mut words: Vec<String> = typed.split_whitespace().map(str::to_string).collect();
                match fix.split_whitespace().count() {
                    0 => typed = ask_line(ALL)?.ok_or_else(eof)?,
                    1 => {
                        words[position - 1] = fix;
                        typed = words.join(" ");
                    }
                    _ => typed = fix,
                }
            }
            Err(problem) => {
                eprintln!("{problem}; type the six words again (Ctrl-C to stop)");
                typed = ask_line(ALL)?.ok_or_else(eof)?;
            }
        }
    }
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
        None => ask_again("Community name (from the card): ", "community name", |c| {
            (!c.is_empty())
                .then(|| c.to_string())
                .ok_or("the community name is empty")
        })?,
    };
    let words = match passphrase {
        Some(p) => aidmesh_protocol::community::check_passphrase(&p)?,
        None => ask_words()?,
    };
    let p = node::init(dir, &community, Some(&words))?;
    println!("Joined community '{}' in {}", p.community, dir.display());
    println!("{}", start_hint(dir, system));
    println!(
        "It finds hubs on the same network by itself; for others add --peer /ip4/ADDRESS/tcp/4610"
    );
    Ok(())
}

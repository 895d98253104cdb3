//! docs/cli.md cannot drift from the binary: every ```` ```console ```` block in it is run,
//! in document order, against one real node (started by the aidmesh-tests harness), and
//! what the binary prints must match what the block shows.
//!
//! How a runnable block is written (see also the comment at the top of docs/cli.md):
//! - a line `$ aidmesh ...` is a command, run by `sh -c` with `aidmesh` on `PATH`,
//!   `AIDMESH_DIR` set to the test node and `NO_COLOR=1`; the lines after it, up to the
//!   next `$ ` line, are what it prints (stdout, then stderr);
//! - output that starts with `error:` must come with a non-zero exit code, any other
//!   output with exit code 0;
//! - `/tmp/` in commands and output stands for a fresh scratch directory;
//! - words are compared with runs of spaces collapsed and blank lines ignored;
//! - a run of letters and digits that holds a digit and is at least 5 long (an id, a
//!   port, a peer id, a digest, a pid) matches any such run; the first time a
//!   hex-looking one (`e9ac712691`) is seen it is bound to what the binary printed, and
//!   later the same text must be the same value, and a command naming it or a prefix of
//!   it (`aidmesh claim e9ac71`) gets the real value;
//! - `N` matches any number (`pid N`);
//! - a line `...` (or one that starts and ends with `...`) stands for any lines.
//!
//! Blocks marked ```` ```text ```` are not run (examples with random passphrases, the
//! long-running `up`, two-node situations).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use aidmesh_tests::{Node, Opts};

const BIN: &str = env!("CARGO_BIN_EXE_aidmesh");

/// One `$ aidmesh ...` line of a runnable block and the output the doc shows for it.
struct Example {
    /// 1-based line number in docs/cli.md, for messages.
    line: usize,
    command: String,
    expected: Vec<String>,
}

/// The examples of every ```` ```console ```` block of `doc`, in order.
fn examples(doc: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut in_block = false;
    for (i, line) in doc.lines().enumerate() {
        let trimmed = line.trim_end();
        if !in_block {
            in_block = trimmed == "```console";
            continue;
        }
        if trimmed.starts_with("```") {
            in_block = false;
        } else if let Some(cmd) = trimmed.strip_prefix("$ ") {
            out.push(Example {
                line: i + 1,
                command: cmd.to_string(),
                expected: Vec::new(),
            });
        } else if let Some(ex) = out.last_mut() {
            ex.expected.push(trimmed.to_string());
        } else {
            panic!("docs/cli.md:{}: output before any `$ ` command", i + 1);
        }
    }
    out
}

/// A piece of a word: a run of letters and digits, or of other characters.
fn pieces(word: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut alnum: Option<bool> = None;
    for (i, c) in word.char_indices() {
        let a = c.is_ascii_alphanumeric();
        if alnum.is_some_and(|x| x != a) {
            out.push(&word[start..i]);
            start = i;
        }
        alnum = Some(a);
    }
    if start < word.len() {
        out.push(&word[start..]);
    }
    out
}

/// An id, port, pid, peer id or digest: a value that differs from run to run.
fn volatile(piece: &str) -> bool {
    piece.len() >= 5
        && piece.chars().all(|c| c.is_ascii_alphanumeric())
        && piece.chars().any(|c| c.is_ascii_digit())
}

fn hexish(piece: &str) -> bool {
    piece.len() >= 6
        && piece
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        && piece.chars().any(|c| c.is_ascii_digit())
}

/// What the doc's values stand for in this run.
#[derive(Default)]
struct Bindings(HashMap<String, String>);

impl Bindings {
    /// Does the actual `word` match the doc's `word`? Binds new hex values.
    fn word(&mut self, doc: &str, actual: &str) -> bool {
        if doc == actual {
            return true;
        }
        let (d, a) = (pieces(doc), pieces(actual));
        if d.len() != a.len() {
            return false;
        }
        let mut new = Vec::new();
        for (d, a) in d.iter().zip(&a) {
            if d == a || (*d == "N" && a.chars().all(|c| c.is_ascii_digit())) {
                continue;
            }
            if !(volatile(d) && a.chars().all(|c| c.is_ascii_alphanumeric())) {
                return false;
            }
            if hexish(d) {
                match self.0.get(*d) {
                    Some(bound) if bound != a => return false,
                    Some(_) => {}
                    None => new.push((d.to_string(), a.to_string())),
                }
            }
        }
        self.0.extend(new);
        true
    }

    /// Matches the doc's lines (with `...` lines) against the actual ones.
    fn lines(&mut self, doc: &[Vec<&str>], actual: &[Vec<&str>]) -> bool {
        let Some((first, rest)) = doc.split_first() else {
            return actual.is_empty();
        };
        let joined = first.join(" ");
        if joined.starts_with("...") && joined.ends_with("...") {
            return (0..=actual.len()).any(|skip| self.lines(rest, &actual[skip..]));
        }
        let Some((a, arest)) = actual.split_first() else {
            return false;
        };
        let saved = self.0.clone();
        let ok = first.len() == a.len()
            && first.iter().zip(a).all(|(d, w)| self.word(d, w))
            && self.lines(rest, arest);
        if !ok {
            self.0 = saved;
        }
        ok
    }

    /// The command with every doc id (or prefix of one) replaced by the real value.
    fn command(&self, cmd: &str) -> String {
        pieces(cmd)
            .into_iter()
            .map(|p| {
                if !hexish(p) {
                    return p.to_string();
                }
                let mut real: Vec<&str> = self
                    .0
                    .iter()
                    .filter(|(d, _)| d.starts_with(p))
                    .map(|(_, a)| &a[..p.len().min(a.len())])
                    .collect();
                real.sort();
                real.dedup();
                match real.as_slice() {
                    [] => p.to_string(),
                    [one] => one.to_string(),
                    _ => panic!("`{p}` in `{cmd}` stands for several values: {real:?}"),
                }
            })
            .collect()
    }
}

/// Lines of text as their words, blank lines dropped.
fn words(lines: &[String]) -> Vec<Vec<&str>> {
    lines
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect()
}

fn run(cmd: &str, node_dir: &Path, scratch: &Path) -> (i32, String) {
    let bin_dir = Path::new(BIN).parent().expect("binary directory");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin_dir.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(scratch)
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env("AIDMESH_DIR", node_dir)
        .env("NO_COLOR", "1")
        .env_remove("AIDMESH_VOLUNTEER_PIN")
        .output()
        .expect("run sh");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Starts a harness node running this very binary.
fn start_node(name: &str, opts: Opts) -> Node {
    // Set once, before any test of this file spawns a process.
    static BIN_ENV: Once = Once::new();
    BIN_ENV.call_once(|| std::env::set_var("AIDMESH_BIN", BIN));
    Node::start(name, opts)
}

fn doc_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cli.md")
}

#[test]
fn parser_and_matcher_catch_drift() {
    let doc = "```console\n$ aidmesh need add x\ne9ac712691\n$ aidmesh claim e9ac71\n\
               e9ac712691 is now claimed\n```\n```text\n$ aidmesh not run\n```\n";
    let ex = examples(doc);
    assert_eq!(ex.len(), 2, "only console blocks are runnable");
    let mut b = Bindings::default();
    let real = vec!["0a1b2c3d4e".to_string()];
    assert!(b.lines(&words(&ex[0].expected), &words(&real)));
    assert_eq!(b.command(&ex[1].command), "aidmesh claim 0a1b2c");
    let same = vec!["0a1b2c3d4e is now claimed".to_string()];
    assert!(b.lines(&words(&ex[1].expected), &words(&same)));
    // Another id where the doc shows the same one, and changed words, are drift.
    let other = vec!["ffff2c3d4e is now claimed".to_string()];
    assert!(!b.lines(&words(&ex[1].expected), &words(&other)));
    let reworded = vec!["0a1b2c3d4e is claimed now".to_string()];
    assert!(!b.lines(&words(&ex[1].expected), &words(&reworded)));
    // Short numbers are literal; `...` stands for any lines.
    let doc = vec!["is 121 characters".to_string(), "...".into(), "end".into()];
    let real = vec!["is 122 characters".to_string(), "end".into()];
    assert!(!b.lines(&words(&doc), &words(&real)));
    let real = vec![
        "is 121 characters".to_string(),
        "a".into(),
        "b".into(),
        "end".into(),
    ];
    assert!(b.lines(&words(&doc), &words(&real)));
}

#[test]
fn every_runnable_example_in_cli_md_prints_what_the_doc_shows() {
    let doc = std::fs::read_to_string(doc_path()).expect("read docs/cli.md");
    let examples = examples(&doc);
    assert!(
        examples.len() >= 40,
        "docs/cli.md has only {} runnable examples; were the ```console blocks lost?",
        examples.len()
    );
    let node = start_node(
        "clidoc",
        Opts {
            community: Some("Elm Street".into()),
            ..Opts::default()
        },
    );
    let scratch = tempfile::Builder::new()
        .prefix("aidmesh-clidoc-")
        .tempdir()
        .expect("scratch dir");
    let tmp = format!("{}/", scratch.path().display());
    let mut bindings = Bindings::default();
    let mut failures = Vec::new();
    for ex in &examples {
        let cmd = bindings.command(&ex.command).replace("/tmp/", &tmp);
        let expected: Vec<String> = ex
            .expected
            .iter()
            .map(|l| l.replace("/tmp/", &tmp))
            .collect();
        let (code, printed) = run(&cmd, node.dir(), scratch.path());
        let printed_lines: Vec<String> = printed.lines().map(str::to_string).collect();
        let wants_error = expected
            .iter()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.starts_with("error:"));
        let code_ok = if wants_error { code != 0 } else { code == 0 };
        if !code_ok || !bindings.lines(&words(&expected), &words(&printed_lines)) {
            failures.push(format!(
                "docs/cli.md:{}: `$ {}`\n  ran: {cmd}\n  exit code {code}\n--- the doc shows ---\n{}\n--- the binary printed ---\n{}",
                ex.line,
                ex.command,
                ex.expected.join("\n"),
                printed.trim_end()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples in docs/cli.md no longer match the binary:\n\n{}\n\nnode log:\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n\n"),
        node.log_tail(20)
    );
}

/// Error messages of the table that no runnable example can show, and why.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "matches 2 items",
        "needs two ids that share 6 hex characters",
    ),
    ("only allowed to its author", "needs a second node"),
    (
        "written by another community",
        "needs a node of another community; tests/tests/bundle.rs checks this message",
    ),
    (
        "is not a CAP alert",
        "needs a CAP sample; tests/tests/cap.rs checks the CAP messages",
    ),
    (
        "which CAP requires",
        "needs a CAP sample; tests/tests/cap.rs checks it",
    ),
    (
        "has a DOCTYPE",
        "needs a hostile file; tests/tests/cap.rs checks it",
    ),
    (
        "not posted:",
        "needs a CAP sample; tests/tests/cap.rs checks it",
    ),
    (
        "cut short inside chunk",
        "needs a damaged file; tests/tests/bundle.rs checks this message",
    ),
    (
        "failed authentication",
        "needs a damaged file; tests/tests/bundle.rs checks this message",
    ),
    ("the node did not answer", "needs a node that hangs"),
    (
        "the disk holding",
        "needs a full disk; tests/tests/disk.rs (root, tmpfs) checks this message",
    ),
    (
        "permission denied",
        "needs another user's node (the Debian package's hub); tests/pi/deb-check.sh runs it",
    ),
    (
        "cannot write to",
        "needs the Debian package's /etc/default/aidmesh; tests/pi/deb-check.sh runs it",
    ),
    (
        "already claimed by",
        "the holder's hub and clock time vary; cli/tests/holder.rs checks this message",
    ),
];

/// Every message of the "Error messages" table (the `code` spans of its first column)
/// is printed by some runnable example: each stretch of it between placeholders
/// (`DIR`, `NAME`, `'X'`, `pid N`, `...`) appears in a block's expected output.
#[test]
fn every_message_of_the_error_table_is_shown_by_a_runnable_example() {
    let doc = std::fs::read_to_string(doc_path()).expect("read docs/cli.md");
    let shown: String = examples(&doc)
        .iter()
        .flat_map(|e| e.expected.iter())
        .flat_map(|l| l.split_whitespace())
        .collect::<Vec<_>>()
        .join(" ");
    let table = doc
        .split("## Error messages")
        .nth(1)
        .expect("docs/cli.md has an 'Error messages' section");
    let mut rows = 0;
    let mut missing = Vec::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        rows += 1;
        let first = row.split(" | ").next().unwrap_or_default();
        if NOT_RUN.iter().any(|(m, _)| first.contains(m)) {
            continue;
        }
        // The code spans are the odd pieces between backticks.
        for code in first.split('`').skip(1).step_by(2) {
            let mut text = code.to_string();
            for p in ["<br>", "DIR", "NAME", "'X'", "pid N", "...", "…"] {
                text = text.replace(p, "\n");
            }
            for stretch in text.split('\n') {
                let stretch = stretch.split_whitespace().collect::<Vec<_>>().join(" ");
                if stretch.len() >= 8 && !shown.contains(&stretch) {
                    missing.push(format!("{stretch:?} (row: {row})"));
                }
            }
        }
    }
    assert!(rows >= 25, "only {rows} rows found in the error table");
    assert!(
        missing.is_empty(),
        "messages of the error table of docs/cli.md that no ```console example prints:\n{}",
        missing.join("\n")
    );
}

/// A `curl` example of docs/api.md with the refusal the doc shows for it.
struct CurlExample {
    line: usize,
    command: String,
    status: u16,
    body: serde_json::Value,
}

/// Every `curl ...` line (with `\` continuations) of a ```` ```sh ```` block that is
/// followed by a `# STATUS {json error body}` line.
fn curl_examples(doc: &str) -> Vec<CurlExample> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut command: Option<(usize, String)> = None;
    let mut continued = false;
    for (i, line) in doc.lines().enumerate() {
        let t = line.trim();
        if !in_block {
            in_block = t == "```sh";
            command = None;
            continue;
        }
        if t.starts_with("```") {
            in_block = false;
            continue;
        }
        if continued {
            if let Some((_, c)) = command.as_mut() {
                c.push(' ');
                c.push_str(t.trim_end_matches('\\').trim());
            }
            continued = t.ends_with('\\');
            continue;
        }
        if t.starts_with("curl ") {
            command = Some((i + 1, t.trim_end_matches('\\').trim().to_string()));
            continued = t.ends_with('\\');
            continue;
        }
        let parsed = t.strip_prefix("# ").and_then(|r| {
            let (status, body) = r.split_once(' ')?;
            let body: serde_json::Value = serde_json::from_str(body).ok()?;
            body.get("error")?;
            Some((status.parse::<u16>().ok()?, body))
        });
        if let (Some((status, body)), Some((line, cmd))) = (parsed, command.take()) {
            out.push(CurlExample {
                line,
                command: cmd,
                status,
                body,
            });
        }
    }
    out
}

#[test]
fn every_refusal_shown_with_curl_in_api_md_is_what_the_node_answers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let doc = std::fs::read_to_string(path).expect("read docs/api.md");
    let examples = curl_examples(&doc);
    assert!(
        examples.len() >= 10,
        "docs/api.md has only {} curl examples with a `# STATUS {{json}}` answer",
        examples.len()
    );
    let node = start_node("apidoc", Opts::default());
    let api = format!("{}/api/v1", node.api_url());
    let mut failures = Vec::new();
    for ex in &examples {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{} -w '\\n%{{http_code}}'", ex.command))
            .env("API", &api)
            .output()
            .expect("run sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        let body: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let detail =
            |v: &serde_json::Value| vec![v["detail"].as_str().unwrap_or_default().to_string()];
        let same = status.trim() == ex.status.to_string()
            && body["error"] == ex.body["error"]
            && Bindings::default().lines(&words(&detail(&ex.body)), &words(&detail(&body)));
        if !same {
            failures.push(format!(
                "docs/api.md:{}: `{}`\n  the doc shows: {} {}\n  the node answered: {} {}",
                ex.line,
                ex.command,
                ex.status,
                ex.body,
                status.trim(),
                body
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} curl examples in docs/api.md no longer match the node:\n\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n\n")
    );
}

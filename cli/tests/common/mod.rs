//! Helpers shared by the CLI test files: run the real `aidmesh` binary, check its exit
//! code and streams, parse its `--json`, and start a harness node running this binary.
#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Once;

use aidmesh_tests::{Node, Opts};
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_aidmesh");

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

pub fn finish(what: String, out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        what,
    }
}

/// A command for the binary with a clean environment for its options.
pub fn cmd() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("AIDMESH_DIR").env("NO_COLOR", "1");
    c
}

/// `aidmesh --data-dir DIR ARGS...`
pub fn run(dir: &Path, args: &[&str]) -> Run {
    let out = cmd()
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run aidmesh");
    finish(format!("aidmesh {}", args.join(" ")), out)
}

/// Runs and expects exit code 0 with nothing on stderr; returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let r = run(dir, args);
    assert!(r.code == 0, "expected success: {}", r.describe());
    assert!(r.stderr.is_empty(), "unexpected stderr: {}", r.describe());
    r.stdout
}

/// Runs with `--json` output and parses it.
pub fn json(dir: &Path, args: &[&str]) -> Value {
    let out = ok(dir, args);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("`{args:?}` printed bad JSON ({e}):\n{out}"))
}

/// Runs and expects failure with `code`, nothing on stdout, and an stderr that holds
/// every one of `needles`; returns stderr.
pub fn fails(dir: &Path, args: &[&str], code: i32, needles: &[&str]) -> String {
    let r = run(dir, args);
    assert_eq!(r.code, code, "wrong exit code: {}", r.describe());
    assert!(r.stdout.is_empty(), "output on failure: {}", r.describe());
    assert!(
        r.stderr.starts_with("error: "),
        "stderr should start with 'error: ': {}",
        r.describe()
    );
    for n in needles {
        assert!(
            r.stderr.contains(n),
            "stderr should mention {n:?}: {}",
            r.describe()
        );
    }
    r.stderr
}

/// Starts a harness node running this very binary.
pub fn start_node(name: &str, opts: Opts) -> Node {
    static BIN_ENV: Once = Once::new();
    BIN_ENV.call_once(|| std::env::set_var("AIDMESH_BIN", BIN));
    Node::start(name, opts)
}

/// The JSON array `v`, or a panic saying what it was.
pub fn array(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a JSON array: {v:#}"))
}

//! Helpers shared by the integration tests: the `scan` example as a program, temporary
//! directories, loopback TCP nodes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hyperion::transport::tcp::TcpConfig;
use hyperion::wire::Cookie;
use hyperion::{HeartbeatConfig, Node, NodeConfig, RemoteTable};

/// A node on loopback with a fixed test cookie and fast heartbeats (200 ms, lost after
/// 1 s), serving `table`.
pub fn tcp_node(table: RemoteTable) -> Node {
    let transport = TcpConfig::bind("127.0.0.1:0").cookie(Cookie::new("test-cookie").unwrap());
    Node::tcp(
        transport,
        NodeConfig {
            remote_table: table,
            heartbeat: HeartbeatConfig {
                interval: Duration::from_millis(200),
                timeout: Duration::from_secs(1),
            },
            ..NodeConfig::default()
        },
    )
    .expect("bind on loopback")
}

/// The `scan` example next to this test binary (`target/<profile>/examples/scan`),
/// built first if `cargo test` was asked for this test alone.
pub fn scan_binary() -> PathBuf {
    example_binary("scan")
}

/// An example next to this test binary (`target/<profile>/examples/NAME`), always
/// built first: `cargo build --example NAME` is cheap when it is up to date, and
/// without it `cargo test --test X` would run a stale binary left by an earlier build
/// (cargo builds examples for integration tests only in a full `cargo test`).
pub fn example_binary(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("test binary path");
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let binary = profile_dir.join("examples").join(name);
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--quiet", "--example", name]);
    if profile_dir.file_name().is_some_and(|dir| dir == "release") {
        build.arg("--release");
    }
    // `cargo test --workspace` builds the crate with the simulator's test-only feature
    // (features unify across the workspace): ask for the same build, or cargo would
    // rebuild the crate without it and relink the example.
    if cfg!(feature = "planted-defects") {
        build.args(["--features", "planted-defects"]);
    }
    let built = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo");
    assert!(built.success(), "cannot build the {name} example");
    binary
}

/// A fresh directory for one test, removed when the returned guard drops (also when
/// the test fails: the guard drops while the panic unwinds).
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("hyperion-{name}-"))
        .tempdir()
        .expect("create a temporary directory")
}

/// Processes whose parent is `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The parent pid is the 2nd field after the parenthesised command name.
        let after = stat.rsplit(')').next().unwrap_or("");
        if after
            .split_whitespace()
            .nth(1)
            .and_then(|f| f.parse::<u32>().ok())
            == Some(parent)
        {
            children.push(pid);
        }
    }
    children
}

/// Whether `pid` runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Fails the test unless a Slurm answers. The real-Slurm tests are `#[ignore]`d, so a
/// plain `cargo test` lists them as ignored rather than passing without Slurm;
/// `.ci/run` starts one (`scripts/local-slurm.sh`) and runs them with
/// `--include-ignored`.
pub fn require_slurm() {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .map(|o| o.status.success() && !o.stdout.is_empty())
        .unwrap_or(false);
    assert!(
        up,
        "no Slurm answers: start one with scripts/local-slurm.sh (these tests are ignored by default)"
    );
}

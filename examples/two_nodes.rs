//! Two OS processes on loopback, each a node: each spawns a closure registered on the
//! other and they exchange messages.
//!
//! ```text
//! cargo run --release --example two_nodes
//! ```
//!
//! The first process starts a node and runs a copy of itself (`two_nodes peer ADDR
//! COOKIE`) as the second; they share a cookie file, made in a fresh temporary
//! directory that is removed at the end, so each proves to the other that it belongs.

use std::process::{Command, ExitCode};

use hyperion::transport::tcp::TcpConfig;
use hyperion::{Closure, Node, NodeConfig, NodeId, Process, ProcessId, RemoteTable};

/// The closure both nodes register: greets whoever asks, then reports where it ran.
fn table() -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register("greet", |p: Process, asker: ProcessId| async move {
        p.send(
            asker,
            format!(
                "hello from {} (process {})",
                p.self_node(),
                std::process::id()
            ),
        );
    });
    table
}

fn start_node(cookie: &std::path::Path) -> std::io::Result<Node> {
    Node::tcp(
        TcpConfig::bind("127.0.0.1:0").cookie_file(cookie),
        NodeConfig {
            remote_table: table(),
            ..NodeConfig::default()
        },
    )
}

/// Spawns `greet` on `other` and waits for its message.
fn greet_from(node: &Node, other: NodeId) -> Result<String, String> {
    node.run(move |p| async move {
        let closure = Closure::new("greet", &p.self_pid()).map_err(|e| e.to_string())?;
        p.spawn(other, closure).await.map_err(|e| e.to_string())?;
        Ok(p.expect::<String>().await)
    })
    .map_err(|reason| reason.to_string())?
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("peer") {
        return match (args.get(2), args.get(3)) {
            (Some(first), Some(cookie)) => peer(first, std::path::Path::new(cookie)),
            _ => {
                eprintln!("usage: two_nodes peer ADDR#INCARNATION COOKIE_FILE");
                ExitCode::from(2)
            }
        };
    }
    // The cookie lives in a directory of this run only, removed when the run ends.
    let scratch = match tempfile::Builder::new()
        .prefix("hyperion-two-nodes-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(err) => {
            eprintln!("cannot make a temporary directory: {err}");
            return ExitCode::FAILURE;
        }
    };
    let cookie = scratch.path().join("cookie");
    let node = match start_node(&cookie) {
        Ok(node) => node,
        Err(err) => {
            eprintln!("cannot start a node: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut peer = match Command::new(&args[0])
        .arg("peer")
        .arg(node.id().to_string())
        .arg(&cookie)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            eprintln!("cannot start the second process: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut line = String::new();
    let stdout = peer.stdout.take().expect("piped");
    if std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).is_err() {
        eprintln!("the second process did not say where it is");
        return ExitCode::FAILURE;
    }
    let second: NodeId = match line.trim().parse() {
        Ok(id) => id,
        Err(why) => {
            eprintln!("{why}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = greet_from(&node, second);
    drop(peer.stdin.take());
    let status = peer.wait();
    match (outcome, status) {
        (Ok(greeting), Ok(status)) if status.success() => {
            println!("first process got: {greeting}");
            ExitCode::SUCCESS
        }
        (Err(why), _) => {
            eprintln!("first process: {why}");
            ExitCode::FAILURE
        }
        (Ok(_), Ok(status)) => {
            eprintln!("the second process failed: {status}");
            ExitCode::FAILURE
        }
        (Ok(_), Err(err)) => {
            eprintln!("cannot wait for the second process: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The second process: greet the first, and tell it where we are.
fn peer(first: &str, cookie: &std::path::Path) -> ExitCode {
    let first: NodeId = match first.parse() {
        Ok(id) => id,
        Err(why) => {
            eprintln!("{why}");
            return ExitCode::from(2);
        }
    };
    let node = match start_node(cookie) {
        Ok(node) => node,
        Err(err) => {
            eprintln!("cannot start a node: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", node.id());
    match greet_from(&node, first) {
        Ok(greeting) => eprintln!("second process got: {greeting}"),
        Err(why) => {
            eprintln!("second process: {why}");
            return ExitCode::FAILURE;
        }
    }
    // Stay up until the first process has greeted us back (it closes our stdin).
    let _ = std::io::Read::read(&mut std::io::stdin(), &mut [0u8; 1]);
    ExitCode::SUCCESS
}

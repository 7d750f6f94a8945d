//! Benchmark of two nodes in two OS processes over TCP on loopback (the deployment's
//! shape: each process has its own node thread and event loop), each figure beside a
//! plain program of the same shape measured in the same run:
//!
//! 1. one-way: messages per second from a process on this node to a process on the peer
//!    (64-byte payloads), the producer pacing itself with `Process::wait_for_room`; vs.
//!    two processes exchanging length-prefixed frames of the same size through a
//!    buffered writer and a buffered reader;
//! 2. round trip of a ping-pong between the two nodes; vs. a plain ping-pong of frames
//!    of the same size over blocking sockets with `TCP_NODELAY`.
//!
//! The binary starts a copy of itself as the peer (`bench_tcp peer <kind>`), told
//! nothing but what to be; it prints where it listens and runs until its standard input
//! closes. Rounds alternate hyperion and plain; the summary is the median ratio and the
//! range.
//!
//! ```text
//! cargo run --release --example bench_tcp [rounds] [one-way|round-trip]
//! ```
//!
//! A second argument runs only that part (both programs), for profiling one phase.
//!
//! With `erl` on the `PATH` (Debian's `erlang-nox`), each round also runs the one-way
//! part's Erlang twin: two Erlang nodes (two OS processes, Erlang distribution over
//! loopback, default settings), a sender process sending the same number of 63-byte
//! binaries to a sink process on the other node, which answers the count at the end
//! (Erlang's distribution suspends a sender whose buffer is full: its own
//! backpressure). `BENCH_TCP_ERLANG=0` skips it.
//!
//! Beside each one-way rate it prints the CPU time per message of each side (the
//! threads of each process, from `/proc/<pid>/task/*/schedstat`, Linux): on a shared
//! machine the rates depend on what else runs, the CPU per message much less. The
//! "CPU-bound ratio" (the plain program's busier side over hyperion's) is what the
//! rate ratio would be on two otherwise idle cores, where the busier side sets the pace.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyperion::transport::tcp::TcpConfig;
use hyperion::wire::{encode_frame, Cookie, Frame};
use hyperion::{Node, NodeConfig, NodeId, Process, ProcessId};

/// Messages one way per round: `BENCH_TCP_MESSAGES` if set (fewer, for profiling under
/// `valgrind`), else a million.
fn messages() -> u64 {
    std::env::var("BENCH_TCP_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}
const ROUND_TRIPS: u64 = 20_000;
const PAYLOAD_BYTES: usize = 64;
const ROUNDS_DEFAULT: usize = 3;

fn node() -> Node {
    let transport = TcpConfig::bind("127.0.0.1:0").cookie(Cookie::new("bench").expect("cookie"));
    Node::tcp(transport, NodeConfig::default()).expect("bind on loopback")
}

/// The length of one of our data frames carrying a 64-byte payload (what the plain
/// program sends, to compare like with like).
fn our_frame_bytes(from: ProcessId, to: ProcessId) -> usize {
    let payload = hyperion::message::encode(&vec![7u8; PAYLOAD_BYTES - 1]).expect("encode");
    let frame = Frame::Data {
        to,
        from,
        fingerprint: hyperion::message::Fingerprint::of::<Vec<u8>>(),
        payload,
    };
    encode_frame(&frame).expect("encode").len()
}

/// CPU time the threads of process `pid` have run so far, in nanoseconds (0 where
/// `/proc` does not say).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU time of this process and of `peer` since `before` (from [`cpu_now`]), per
/// message, in nanoseconds.
fn cpu_per_message(peer: u32, before: (u64, u64), messages: u64) -> (f64, f64) {
    let (ours, theirs) = cpu_now(peer);
    (
        ours.saturating_sub(before.0) as f64 / messages as f64,
        theirs.saturating_sub(before.1) as f64 / messages as f64,
    )
}

/// CPU time so far of this process and of `peer`.
fn cpu_now(peer: u32) -> (u64, u64) {
    (cpu_ns(std::process::id()), cpu_ns(peer))
}

/// What one round of one program measured one way: the rate, and the CPU per message
/// of the sending and the receiving process.
struct OneWay {
    rate: f64,
    sender_ns: f64,
    receiver_ns: f64,
}

impl OneWay {
    /// The busier side's CPU per message: the pace on otherwise idle cores.
    fn busier_ns(&self) -> f64 {
        self.sender_ns.max(self.receiver_ns)
    }
}

// ---- the peer: a copy of this binary ---------------------------------------------

/// A copy of this binary running as the peer; it ends when its standard input closes.
struct Peer {
    child: Child,
    /// The first line it printed: where it listens.
    address: String,
}

impl Peer {
    fn start(kind: &str) -> Peer {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .args(["peer", kind])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the peer process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the peer's address");
        Peer {
            child,
            address: line.trim().to_string(),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Blocks until the parent closes our standard input.
fn wait_for_parent() {
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
}

/// `sink`: counts `(reply_to, count)`'s messages, answering the count at the end.
async fn sink(p: Process) {
    loop {
        let (reply_to, count): (ProcessId, u64) = p.expect().await;
        for _ in 0..count {
            let _: Vec<u8> = p.expect().await;
        }
        p.send(reply_to, count);
    }
}

/// `echo`: answers each `(from, n)` with `n`.
async fn echo(p: Process) {
    loop {
        let (from, n): (ProcessId, u64) = p.expect().await;
        p.send(from, n);
    }
}

fn run_peer(kind: &str) {
    match kind {
        "hyperion" => {
            let node = node();
            node.run(|p| async move {
                let sink_pid = p.spawn_local(sink);
                let echo_pid = p.spawn_local(echo);
                p.register("sink", sink_pid).expect("register");
                p.register("echo", echo_pid).expect("register");
            })
            .expect("register");
            let id = node.id();
            println!("{} {}", id.address, id.incarnation);
            wait_for_parent();
        }
        "plain-sink" => {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            println!("{}", listener.local_addr().expect("address"));
            let (stream, _) = listener.accept().expect("accept");
            let mut ack = stream.try_clone().expect("clone");
            let mut reader = BufReader::with_capacity(1 << 16, stream);
            let mut frame = vec![0u8; 1 << 16];
            let mut count = 0u64;
            let messages = messages();
            loop {
                let mut length = [0u8; 4];
                if reader.read_exact(&mut length).is_err() {
                    return;
                }
                let length = u32::from_le_bytes(length) as usize;
                reader.read_exact(&mut frame[..length]).expect("frame");
                count += 1;
                if count % messages == 0 {
                    ack.write_all(&[1]).expect("ack");
                }
            }
        }
        "plain-echo" => {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            println!("{}", listener.local_addr().expect("address"));
            let (mut stream, _) = listener.accept().expect("accept");
            stream.set_nodelay(true).expect("nodelay");
            let mut length = [0u8; 4];
            let mut frame = vec![0u8; 1 << 16];
            while stream.read_exact(&mut length).is_ok() {
                let bytes = u32::from_le_bytes(length) as usize;
                stream.read_exact(&mut frame[..bytes]).expect("frame");
                // One write per frame, as a program answering each request would.
                let mut reply = Vec::with_capacity(4 + bytes);
                reply.extend_from_slice(&length);
                reply.extend_from_slice(&frame[..bytes]);
                stream.write_all(&reply).expect("write");
            }
        }
        other => panic!("unknown peer kind {other}"),
    }
}

// ---- hyperion --------------------------------------------------------------------

/// Which parts of a round to run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parts {
    Both,
    OneWay,
    RoundTrip,
}

/// Messages per second one way (and CPU per message), and the frame size; then the
/// round trip (`NAN` and zero for a part not run). `peer_pid` is the peer's process.
fn hyperion_round(
    node: &Node,
    peer: NodeId,
    peer_pid: u32,
    parts: Parts,
) -> (OneWay, usize, Duration) {
    node.run(move |p| async move {
        let sink = p.whereis_remote(peer, "sink").await.expect("sink");
        let echo = p.whereis_remote(peer, "echo").await.expect("echo");
        let frame = our_frame_bytes(p.self_pid(), sink);
        let mut one_way = OneWay {
            rate: f64::NAN,
            sender_ns: f64::NAN,
            receiver_ns: f64::NAN,
        };
        if parts != Parts::RoundTrip {
            let payload = vec![7u8; PAYLOAD_BYTES - 1];
            let cpu_before = cpu_now(peer_pid);
            let started = Instant::now();
            p.send(sink, (p.self_pid(), messages()));
            for _ in 0..messages() {
                // Sending never blocks: this is the producer's flow control.
                p.wait_for_room(peer).await;
                p.send(sink, payload.clone());
            }
            let _: u64 = p.expect().await;
            one_way.rate = messages() as f64 / started.elapsed().as_secs_f64();
            (one_way.sender_ns, one_way.receiver_ns) =
                cpu_per_message(peer_pid, cpu_before, messages());
        }
        if parts == Parts::OneWay {
            return (one_way, frame, Duration::ZERO);
        }

        p.send(echo, (p.self_pid(), 0u64)); // warm up
        let _: u64 = p.expect().await;
        let started = Instant::now();
        for n in 0..ROUND_TRIPS {
            p.send(echo, (p.self_pid(), n));
            let _: u64 = p.expect().await;
        }
        (one_way, frame, started.elapsed() / ROUND_TRIPS as u32)
    })
    .expect("run")
}

// ---- plain sockets ---------------------------------------------------------------

fn plain_one_way(frame_bytes: usize) -> OneWay {
    let peer = Peer::start("plain-sink");
    let address: SocketAddr = peer.address.parse().expect("address");
    let stream = TcpStream::connect(address).expect("connect");
    let mut ack = stream.try_clone().expect("clone");
    let cpu_before = cpu_now(peer.child.id());
    let started = Instant::now();
    let mut writer = BufWriter::with_capacity(1 << 16, stream);
    let frame = vec![7u8; frame_bytes];
    for _ in 0..messages() {
        writer
            .write_all(&(frame_bytes as u32).to_le_bytes())
            .expect("write");
        writer.write_all(&frame).expect("write");
    }
    writer.flush().expect("flush");
    ack.read_exact(&mut [0u8]).expect("ack");
    let rate = messages() as f64 / started.elapsed().as_secs_f64();
    let (sender_ns, receiver_ns) = cpu_per_message(peer.child.id(), cpu_before, messages());
    OneWay {
        rate,
        sender_ns,
        receiver_ns,
    }
}

fn plain_round_trip(frame_bytes: usize) -> Duration {
    let peer = Peer::start("plain-echo");
    let address: SocketAddr = peer.address.parse().expect("address");
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut frame = vec![7u8; 4 + frame_bytes];
    frame[..4].copy_from_slice(&(frame_bytes as u32).to_le_bytes());
    stream.write_all(&frame).expect("warm up");
    stream.read_exact(&mut frame).expect("warm up");
    let started = Instant::now();
    for _ in 0..ROUND_TRIPS {
        stream.write_all(&frame).expect("write");
        stream.read_exact(&mut frame).expect("read");
    }
    started.elapsed() / ROUND_TRIPS as u32
}

// ---- the Erlang twin -------------------------------------------------------------

const ERLANG_TWIN: &str = r#"
-module(bench_tcp_twin).
-export([sink/0, send/2]).

sink() ->
    register(sink, self()),
    sink_loop().

sink_loop() ->
    receive
        {From, N} ->
            count(N),
            From ! {done, N},
            sink_loop()
    end.

count(0) -> ok;
count(N) -> receive B when is_binary(B) -> count(N - 1) end.

send(Node, N) ->
    Sink = find(Node, 1000),
    Payload = binary:copy(<<7>>, 63),
    T0 = erlang:monotonic_time(nanosecond),
    Sink ! {self(), N},
    loop(Sink, N, Payload),
    receive {done, N} -> ok end,
    T1 = erlang:monotonic_time(nanosecond),
    io:format("~p~n", [T1 - T0]).

find(_, 0) -> exit(no_sink);
find(Node, Tries) ->
    case rpc:call(Node, erlang, whereis, [sink]) of
        Pid when is_pid(Pid) -> Pid;
        _ -> timer:sleep(10), find(Node, Tries - 1)
    end.

loop(_, 0, _) -> ok;
loop(Sink, K, P) -> Sink ! P, loop(Sink, K - 1, P).
"#;

/// The compiled Erlang twin of the one-way part, in a temporary directory removed on
/// drop.
struct ErlangTwin {
    dir: std::path::PathBuf,
}

impl ErlangTwin {
    /// Compiles the twin, if `erl` runs here (and `BENCH_TCP_ERLANG` is not `0`).
    fn compile() -> Option<ErlangTwin> {
        if std::env::var("BENCH_TCP_ERLANG").as_deref() == Ok("0") {
            return None;
        }
        let dir = std::env::temp_dir().join(format!("hyperion-bench-tcp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let twin = ErlangTwin { dir };
        std::fs::write(twin.dir.join("bench_tcp_twin.erl"), ERLANG_TWIN).ok()?;
        let dir_text = twin.dir.to_str()?;
        let program = format!(
            "{{ok, _}} = compile:file(\"{dir_text}/bench_tcp_twin\", [{{outdir, \"{dir_text}\"}}]), halt()."
        );
        let status = Command::new("erl")
            .args(["-noshell", "-eval", &program])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(twin)
    }

    /// Messages per second one way between two Erlang nodes, and the CPU per message
    /// of the sending and the receiving VM; `None` if a node did not run.
    fn one_way(&self, round: usize) -> Option<OneWay> {
        let sink_name = format!("sink{}_{round}@127.0.0.1", std::process::id());
        let sender_name = format!("send{}_{round}@127.0.0.1", std::process::id());
        let mut sink = Command::new("erl")
            .args([
                "-noshell",
                "-name",
                &sink_name,
                "-setcookie",
                "bench",
                "-pa",
            ])
            .arg(&self.dir)
            .args(["-eval", "bench_tcp_twin:sink()."])
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let program = format!(
            "bench_tcp_twin:send('{sink_name}', {}), halt().",
            messages()
        );
        let sender = Command::new("erl")
            .args([
                "-noshell",
                "-name",
                &sender_name,
                "-setcookie",
                "bench",
                "-pa",
            ])
            .arg(&self.dir)
            .args(["-eval", &program])
            .stdout(Stdio::piped())
            .spawn();
        let measured = sender.ok().and_then(|mut sender| {
            let mut line = String::new();
            BufReader::new(sender.stdout.take()?)
                .read_line(&mut line)
                .ok()?;
            // The VMs' CPU, read before either exits.
            let (sender_cpu, sink_cpu) = (cpu_ns(sender.id()), cpu_ns(sink.id()));
            let _ = sender.wait();
            let nanos: f64 = line.trim().parse().ok()?;
            let per_message = |cpu: u64| cpu as f64 / messages() as f64;
            Some(OneWay {
                rate: messages() as f64 / (nanos / 1e9),
                // Start-up included: an upper bound.
                sender_ns: per_message(sender_cpu),
                receiver_ns: per_message(sink_cpu),
            })
        });
        let _ = sink.kill();
        let _ = sink.wait();
        measured
    }
}

impl Drop for ErlangTwin {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- main ------------------------------------------------------------------------

fn median_and_range(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("peer") {
        run_peer(args.get(2).map(String::as_str).unwrap_or(""));
        return;
    }
    let rounds: usize = args
        .get(1)
        .map(|n| n.parse().expect("rounds: a number"))
        .unwrap_or(ROUNDS_DEFAULT);
    let parts = match args.get(2).map(String::as_str) {
        None => Parts::Both,
        Some("one-way") => Parts::OneWay,
        Some("round-trip") => Parts::RoundTrip,
        Some(other) => panic!("unknown part {other}: one-way or round-trip"),
    };
    let node = node();
    let erlang = (parts != Parts::RoundTrip)
        .then(ErlangTwin::compile)
        .flatten();
    if erlang.is_none() && parts != Parts::RoundTrip {
        println!("(no Erlang twin: `erl` did not run or compile it, or BENCH_TCP_ERLANG=0)");
    }
    let (mut one_way, mut round_trip, mut cpu_bound) = (Vec::new(), Vec::new(), Vec::new());
    let mut over_erlang = Vec::new();
    for round in 1..=rounds {
        let peer = Peer::start("hyperion");
        let mut fields = peer.address.split(' ');
        let peer_id = NodeId {
            address: fields.next().and_then(|a| a.parse().ok()).expect("address"),
            incarnation: fields
                .next()
                .and_then(|i| i.parse().ok())
                .expect("incarnation"),
        };
        let (ours, frame_bytes, ours_rtt) = hyperion_round(&node, peer_id, peer.child.id(), parts);
        drop(peer);
        let plain = if parts == Parts::RoundTrip {
            OneWay {
                rate: f64::NAN,
                sender_ns: f64::NAN,
                receiver_ns: f64::NAN,
            }
        } else {
            plain_one_way(frame_bytes)
        };
        let plain_rtt = if parts == Parts::OneWay {
            Duration::ZERO
        } else {
            plain_round_trip(frame_bytes)
        };
        println!(
            "round {round}: one-way, {PAYLOAD_BYTES}-byte payloads ({frame_bytes}-byte frames): \
             hyperion {:.2} M msg/s | plain buffered frames {:.2} M frames/s | ratio {:.2}; \
             round trip: hyperion {:.1} us | plain TCP_NODELAY ping-pong {:.1} us | ratio {:.2}",
            ours.rate / 1e6,
            plain.rate / 1e6,
            ours.rate / plain.rate,
            ours_rtt.as_secs_f64() * 1e6,
            plain_rtt.as_secs_f64() * 1e6,
            ours_rtt.as_secs_f64() / plain_rtt.as_secs_f64()
        );
        println!(
            "round {round}: one-way CPU per message: hyperion sender {:.0} ns, receiver {:.0} ns | \
             plain sender {:.0} ns, receiver {:.0} ns | CPU-bound ratio {:.2}",
            ours.sender_ns,
            ours.receiver_ns,
            plain.sender_ns,
            plain.receiver_ns,
            plain.busier_ns() / ours.busier_ns()
        );
        if let Some(twin) = &erlang {
            match twin.one_way(round) {
                Some(theirs) => {
                    println!(
                        "round {round}: one-way, Erlang distribution (two nodes, 63-byte binaries): \
                         {:.2} M msg/s, CPU per message (VM start included) sender {:.0} ns, \
                         receiver {:.0} ns | hyperion / Erlang {:.1}",
                        theirs.rate / 1e6,
                        theirs.sender_ns,
                        theirs.receiver_ns,
                        ours.rate / theirs.rate
                    );
                    over_erlang.push(ours.rate / theirs.rate);
                }
                None => println!("round {round}: the Erlang twin did not run"),
            }
        }
        one_way.push(ours.rate / plain.rate);
        round_trip.push(ours_rtt.as_secs_f64() / plain_rtt.as_secs_f64());
        cpu_bound.push(plain.busier_ns() / ours.busier_ns());
    }
    let (median, low, high) = median_and_range(one_way);
    println!(
        "one-way ratio (hyperion / plain, two processes): median {median:.2}, range {low:.2}-{high:.2} (target >= 0.25)"
    );
    if !over_erlang.is_empty() {
        let (median, low, high) = median_and_range(over_erlang);
        println!(
            "one-way ratio (hyperion / Erlang distribution, two processes each): median {median:.1}, range {low:.1}-{high:.1} (target >= 10)"
        );
    }
    let (median, low, high) = median_and_range(cpu_bound);
    println!(
        "one-way CPU-bound ratio (plain's busier side / hyperion's, CPU per message): median {median:.2}, range {low:.2}-{high:.2}"
    );
    let (median, low, high) = median_and_range(round_trip);
    println!(
        "round-trip ratio (hyperion / plain, two processes): median {median:.2}, range {low:.2}-{high:.2} (target <= 1.1)"
    );
}

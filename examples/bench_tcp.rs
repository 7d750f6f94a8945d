//! Benchmark of nodes over TCP on loopback, each figure beside a plain TCP program doing
//! the same thing with the same frame sizes, in the same run:
//!
//! 1. messages per second from a process on one node to a process on another
//!    (64-byte payloads), vs. a plain program writing length-prefixed frames of the same
//!    size through a buffered writer and reading them through a buffered reader;
//! 2. round-trip latency of a ping-pong between two nodes, vs. a plain ping-pong with
//!    `TCP_NODELAY`.
//!
//! ```text
//! cargo run --release --example bench_tcp
//! ```

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use hyperion::transport::tcp::TcpConfig;
use hyperion::wire::{encode_frame, Cookie, Frame};
use hyperion::{Node, NodeConfig, Process, ProcessId};

const MESSAGES: u64 = 1_000_000;
const ROUND_TRIPS: u64 = 20_000;
const PAYLOAD_BYTES: usize = 64;

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

/// Messages per acknowledgement; the sender keeps at most two windows unacknowledged,
/// as any sender that must not outrun its receiver would (sending never blocks, so flow
/// control is the program's).
const WINDOW: u64 = 16_384;

async fn counter(p: Process) {
    let (reply_to, count): (ProcessId, u64) = p.expect().await;
    for n in 1..=count {
        let _: Vec<u8> = p.expect().await;
        if n % WINDOW == 0 || n == count {
            p.send(reply_to, n);
        }
    }
}

async fn echo(p: Process) {
    loop {
        let (from, n): (ProcessId, u64) = p.expect().await;
        p.send(from, n);
    }
}

fn hyperion_throughput() -> (f64, usize) {
    let (a, b) = (node(), node());
    let receiver = b.spawn(counter).expect("spawn");
    let (rate, frame) = a
        .run(move |p| async move {
            let frame = our_frame_bytes(p.self_pid(), receiver);
            let started = Instant::now();
            p.send(receiver, (p.self_pid(), MESSAGES));
            let payload = vec![7u8; PAYLOAD_BYTES - 1];
            let mut acknowledged = 0;
            for n in 1..=MESSAGES {
                p.send(receiver, payload.clone());
                if n % 512 == 0 {
                    p.yield_now().await; // let the driver write what the batch queued
                }
                while n - acknowledged >= 2 * WINDOW {
                    acknowledged = p.expect::<u64>().await;
                }
            }
            while acknowledged < MESSAGES {
                acknowledged = p.expect::<u64>().await;
            }
            (MESSAGES as f64 / started.elapsed().as_secs_f64(), frame)
        })
        .expect("run");
    (rate, frame)
}

fn plain_throughput(frame_bytes: usize) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let reader = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::with_capacity(1 << 16, stream);
        let mut frame = vec![0u8; frame_bytes];
        for _ in 0..MESSAGES {
            let mut length = [0u8; 4];
            reader.read_exact(&mut length).expect("length");
            let length = u32::from_le_bytes(length) as usize;
            reader.read_exact(&mut frame[..length]).expect("frame");
        }
    });
    let stream = TcpStream::connect(address).expect("connect");
    let started = Instant::now();
    let mut writer = BufWriter::with_capacity(1 << 16, stream);
    let frame = vec![7u8; frame_bytes];
    for _ in 0..MESSAGES {
        writer
            .write_all(&(frame_bytes as u32).to_le_bytes())
            .expect("write");
        writer.write_all(&frame).expect("write");
    }
    writer.flush().expect("flush");
    reader.join().expect("reader");
    MESSAGES as f64 / started.elapsed().as_secs_f64()
}

fn hyperion_round_trip() -> Duration {
    let (a, b) = (node(), node());
    let server = b.spawn(echo).expect("spawn");
    a.run(move |p| async move {
        p.send(server, (p.self_pid(), 0u64)); // connect and warm up
        let _: u64 = p.expect().await;
        let started = Instant::now();
        for n in 0..ROUND_TRIPS {
            p.send(server, (p.self_pid(), n));
            let _: u64 = p.expect().await;
        }
        started.elapsed() / ROUND_TRIPS as u32
    })
    .expect("run")
}

fn plain_round_trip(frame_bytes: usize) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_nodelay(true).expect("nodelay");
        let mut frame = vec![0u8; 4 + frame_bytes];
        for _ in 0..=ROUND_TRIPS {
            stream.read_exact(&mut frame).expect("read");
            stream.write_all(&frame).expect("write");
        }
    });
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
    let elapsed = started.elapsed() / ROUND_TRIPS as u32;
    server.join().expect("server");
    elapsed
}

fn main() {
    let (ours, frame_bytes) = hyperion_throughput();
    let plain = plain_throughput(frame_bytes);
    println!(
        "throughput, {PAYLOAD_BYTES}-byte payloads ({frame_bytes}-byte frames): hyperion {:>6.2} M msg/s | plain buffered TCP {:>6.2} M frames/s | ratio {:.2} (target >= 0.25)",
        ours / 1e6,
        plain / 1e6,
        ours / plain
    );
    let ours = hyperion_round_trip();
    let plain = plain_round_trip(frame_bytes);
    println!(
        "round trip: hyperion {:>7.1} us | plain TCP ping-pong (TCP_NODELAY) {:>7.1} us | ratio {:.2} (target <= 1.2)",
        ours.as_secs_f64() * 1e6,
        plain.as_secs_f64() * 1e6,
        ours.as_secs_f64() / plain.as_secs_f64()
    );
}

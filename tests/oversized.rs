//! Messages over the frame limit, and frames a peer cannot decode: the sender gets an
//! error (or the drop is visible), the connection stays up, and no gap is ever silent.
//! Over real TCP on loopback and in the simulator.

mod common;

use std::rc::Rc;
use std::time::{Duration, Instant};

use hyperion::mx::{start_tracer, MxEvent, MxRecipient, TraceTarget};
use hyperion::remote::{with_remote_runner, RemoteCall, RemoteErrorKind, RetryPolicy, RunnerError};
use hyperion::transport::tcp::{TcpConfig, TcpTransport};
use hyperion::transport::{Transport, TransportEvent};
use hyperion::wire::{Cookie, FRAME_BYTES_MAX};
use hyperion::{
    match_type, Closure, HeartbeatConfig, Node, NodeConfig, Process, ProcessId,
    ProcessMonitorNotification, RemoteTable, SpawnError,
};
use hyperion_sim::{Faults, Sim, SimLauncher};

/// Long enough for anything that should happen on loopback; reached only on failure.
const DEADLINE: Duration = Duration::from_secs(30);

/// Frame limit of the small-limit TCP tests.
const SMALL_LIMIT: usize = 64 * 1024;

fn cookie() -> Cookie {
    Cookie::new("test-cookie").unwrap()
}

/// A loopback node with the test cookie, slow heartbeats (so that only the behaviour
/// under test can break a connection) and the given transport settings.
fn node(table: RemoteTable, transport: TcpConfig) -> Node {
    Node::tcp(
        transport.cookie(cookie()),
        NodeConfig {
            remote_table: table,
            heartbeat: HeartbeatConfig {
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(120),
            },
            ..NodeConfig::default()
        },
    )
    .expect("bind on loopback")
}

fn limited(frame_bytes_max: usize) -> TcpConfig {
    TcpConfig::bind("127.0.0.1:0")
        .frame_bytes_max(frame_bytes_max)
        .queued_bytes_max(4 * frame_bytes_max + 64)
}

/// `echo`: answers each `(from, n)` with `n`; `length`: answers each `(from, bytes)`
/// with the number of bytes.
fn table() -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register("echo", |p: Process, count: u32| async move {
        for _ in 0..count {
            let (from, n): (ProcessId, u64) = p.expect().await;
            p.send(from, n);
        }
    });
    table.register("length", |p: Process, count: u32| async move {
        for _ in 0..count {
            let (from, bytes): (ProcessId, Vec<u8>) = p.expect().await;
            p.send(from, bytes.len() as u64);
        }
    });
    table
}

#[test]
fn an_oversized_message_is_refused_at_the_sender_and_the_connection_stays_up() {
    let server = node(table(), limited(SMALL_LIMIT));
    let client = node(RemoteTable::new(), limited(SMALL_LIMIT));
    let server_id = server.id();
    let outcome = client
        .run(move |p| async move {
            // Two rounds: it stays alive after the first answer.
            let echo = p
                .spawn(server_id, Closure::new("echo", &2u32).unwrap())
                .await
                .expect("spawned");
            p.monitor(echo);
            p.send(echo, vec![7u8; 2 * SMALL_LIMIT]);
            p.send(echo, (p.self_pid(), 42u64));
            let answer = p
                .receive_timeout(DEADLINE, vec![match_type(|n: u64| n)])
                .await;
            let fired = p
                .receive_timeout(
                    Duration::ZERO,
                    vec![match_type(|n: ProcessMonitorNotification| n.reason)],
                )
                .await;
            (answer, fired)
        })
        .unwrap();
    assert_eq!(outcome, (Some(42), None));
}

#[test]
fn an_oversized_message_is_published_with_sender_receiver_size_and_limit() {
    let server = node(table(), limited(SMALL_LIMIT));
    let client = node(RemoteTable::new(), limited(SMALL_LIMIT));
    let server_id = server.id();
    let (me, echo, records) = client
        .run(move |p| async move {
            let tracer = start_tracer(&p, TraceTarget::Memory).unwrap();
            let echo = p
                .spawn(server_id, Closure::new("echo", &1u32).unwrap())
                .await
                .expect("spawned");
            p.send(echo, vec![7u8; 2 * SMALL_LIMIT]);
            p.yield_now().await; // the tracer runs
            (p.self_pid(), echo, tracer.records())
        })
        .unwrap();
    let refused: Vec<_> = records
        .iter()
        .filter_map(|record| match &record.event {
            MxEvent::MessageRefused {
                from,
                to,
                bytes,
                limit,
            } => Some((*from, to.clone(), *bytes, *limit)),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1, "{records:?}");
    let (from, to, bytes, limit) = refused[0].clone();
    assert_eq!((from, to), (me, MxRecipient::Process(echo)));
    assert!(bytes > 2 * SMALL_LIMIT as u64, "{bytes}");
    assert_eq!(limit, SMALL_LIMIT as u64);
}

#[test]
fn a_spawn_whose_closure_is_over_the_limit_is_an_error_and_the_node_keeps_serving() {
    let server = node(table(), limited(SMALL_LIMIT));
    let client = node(RemoteTable::new(), limited(SMALL_LIMIT));
    let server_id = server.id();
    let (refused, served) = client
        .run(move |p| async move {
            let big = Closure::new("echo", &vec![0u8; 2 * SMALL_LIMIT]).unwrap();
            let refused = p.spawn(server_id, big).await;
            let served = p
                .spawn(server_id, Closure::new("echo", &0u32).unwrap())
                .await;
            (refused, served.is_ok())
        })
        .unwrap();
    assert!(
        matches!(refused, Err(SpawnError::TooLarge { bytes, limit })
            if bytes > 2 * SMALL_LIMIT as u64 && limit == SMALL_LIMIT as u64),
        "{refused:?}"
    );
    assert!(served);
}

#[test]
fn a_frame_limit_above_16_mib_carries_a_message_of_20_mib() {
    let limit = 32 * 1024 * 1024;
    let length = 20 * 1024 * 1024;
    let server = node(table(), limited(limit));
    let client = node(RemoteTable::new(), limited(limit));
    let server_id = server.id();
    let answer = client
        .run(move |p| async move {
            let counter = p
                .spawn(server_id, Closure::new("length", &1u32).unwrap())
                .await
                .expect("spawned");
            p.send(counter, (p.self_pid(), vec![1u8; length]));
            p.receive_timeout(DEADLINE, vec![match_type(|n: u64| n)])
                .await
        })
        .unwrap();
    assert_eq!(answer, Some(length as u64));
}

#[test]
fn an_undecodable_frame_from_a_peer_breaks_the_connection() {
    let server = node(table(), TcpConfig::bind("127.0.0.1:0"));
    let server_id = server.id();
    // A peer that holds the cookie but speaks garbage once connected.
    // Of the node's build (the test binary's), or its hello would be refused first.
    let raw_config = TcpConfig::bind("127.0.0.1:0")
        .cookie(cookie())
        .build(hyperion::BuildId::of_current_exe());
    let raw = TcpTransport::bind(raw_config, 1).unwrap();
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(64);
    raw.register(poll.registry()).unwrap();
    let mut sender = raw.clone();
    sender.send(server_id, vec![0xff; 8]);
    let started = Instant::now();
    let mut seen = Vec::new();
    while !seen.contains(&TransportEvent::PeerLost(server_id)) {
        assert!(
            started.elapsed() < DEADLINE,
            "the connection was never broken: {seen:?}"
        );
        let mut out = Vec::new();
        raw.flush(&mut out);
        poll.poll(&mut events, Some(Duration::from_millis(5)))
            .unwrap();
        for event in events.iter() {
            raw.on_event(event, &mut out);
        }
        raw.on_timer(Instant::now(), &mut out);
        seen.extend(out);
    }
    assert!(
        seen.contains(&TransportEvent::PeerConnected(server_id)),
        "{seen:?}"
    );
    // The node still serves others.
    let client = node(RemoteTable::new(), TcpConfig::bind("127.0.0.1:0"));
    let served = client
        .run(move |p| async move {
            p.spawn(server_id, Closure::new("echo", &0u32).unwrap())
                .await
                .is_ok()
        })
        .unwrap();
    assert!(served);
}

// ---- the simulator: remote calls ----------------------------------------------------

fn sim_table() -> RemoteTable {
    let mut table = RemoteTable::new();
    // Text rather than byte vectors: serde writes a string in one piece, which keeps
    // these 16 MiB values quick to encode in a debug build.
    table.register_call("length", |_p: Process, text: String| async move {
        Ok::<_, String>(text.len() as u64)
    });
    table.register_call("blob", |_p: Process, length: u64| async move {
        Ok::<_, String>("x".repeat(length as usize))
    });
    table
}

/// Runs `call` with a launcher that would retry 5 times; returns the outcome and the
/// number of workers launched.
fn run_with_retries<R>(seed: u64, call: RemoteCall<R>) -> (Result<R, RunnerError>, usize)
where
    R: hyperion::Serializable + Clone + std::fmt::Debug,
{
    let mut sim = Sim::with_faults(seed, Faults::calm());
    let master = sim.add_node();
    let launcher = SimLauncher::new(sim.handle(), sim_table()).retry_policy(RetryPolicy {
        max_retries: Some(5),
        pause: Duration::from_millis(100),
        pause_max: Duration::from_secs(1),
    });
    let launcher = Rc::new(launcher);
    let in_sim = launcher.clone();
    let call = Rc::new(call);
    let outcome = sim
        .run_until(&master, move |p| async move {
            let p = &p;
            with_remote_runner(p, &*in_sim, |runner| {
                let call = call.clone();
                async move { runner.run(p, &call).await }
            })
            .await
        })
        .unwrap_or_else(|err| panic!("seed {seed}: {err}"));
    (outcome, launcher.launched().len())
}

fn assert_too_large_once<R: std::fmt::Debug>(
    seed: u64,
    (outcome, launched): (Result<R, RunnerError>, usize),
    what: &str,
) {
    match &outcome {
        Err(RunnerError::Remote(error)) => match &error.kind {
            RemoteErrorKind::Exception(text) => {
                assert!(text.contains(what), "seed {seed}: {text}");
                assert!(
                    text.contains(&FRAME_BYTES_MAX.to_string()),
                    "seed {seed}: {text}"
                );
                assert!(!error.is_retryable(), "seed {seed}: {error}");
            }
            other => panic!("seed {seed}: expected an exception, got {other:?}"),
        },
        other => panic!("seed {seed}: expected a remote error, got {other:?}"),
    }
    assert_eq!(launched, 1, "seed {seed}: retried");
}

#[test]
fn a_call_whose_argument_is_over_the_limit_fails_at_once_and_is_not_retried() {
    for seed in 0..2 {
        let call: RemoteCall<u64> =
            RemoteCall::new("length", || async { "x".repeat(FRAME_BYTES_MAX + 1) });
        assert_too_large_once(seed, run_with_retries(seed, call), "closure");
    }
}

#[test]
fn a_call_whose_reply_is_over_the_limit_fails_at_once_and_is_not_retried() {
    for seed in 0..2 {
        let call: RemoteCall<String> =
            RemoteCall::new("blob", || async { FRAME_BYTES_MAX as u64 + 1 });
        assert_too_large_once(seed, run_with_retries(seed, call), "reply");
    }
}

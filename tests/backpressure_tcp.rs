//! Backpressure over real TCP on loopback: a producer that awaits
//! `Process::wait_for_room` before each send never breaks its connection, however far
//! it outruns its consumer; one that does not still gets the queue limit's clear
//! failure (the connection broken, monitors fire `Disconnect`).

use std::time::Duration;

use hyperion::transport::tcp::TcpConfig;
use hyperion::wire::Cookie;
use hyperion::{
    match_type, DiedReason, HeartbeatConfig, Node, NodeConfig, Process, ProcessId,
    ProcessMonitorNotification,
};

/// Long enough for anything that should happen on loopback; reached only on failure.
const DEADLINE: Duration = Duration::from_secs(60);

/// Messages of `MESSAGE_BYTES` the producer sends: 32 MiB in all, 128 times the queue
/// limit, so that a producer without backpressure passes the limit within one turn.
const MESSAGES: u64 = 2_048;
const MESSAGE_BYTES: usize = 16 * 1024;

/// Small limits: frames up to 64 KiB, 256 KiB queued at most, producers resume below
/// 64 KiB.
fn limits() -> TcpConfig {
    TcpConfig::bind("127.0.0.1:0")
        .cookie(Cookie::new("backpressure").unwrap())
        .frame_bytes_max(64 * 1024)
        .queued_bytes_max(256 * 1024)
        .queued_bytes_high_water(64 * 1024)
}

/// Slow heartbeats, so that only the queue limit can break a connection.
fn node() -> Node {
    Node::tcp(
        limits(),
        NodeConfig {
            heartbeat: HeartbeatConfig {
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(120),
            },
            ..NodeConfig::default()
        },
    )
    .expect("bind on loopback")
}

/// Counts `MESSAGES` messages, then tells the producer how many bytes it received.
async fn consumer(p: Process) {
    let producer: ProcessId = p.expect().await;
    let mut bytes = 0u64;
    for _ in 0..MESSAGES {
        let message: Vec<u8> = p.expect().await;
        bytes += message.len() as u64;
    }
    p.send(producer, bytes);
}

/// Runs a producer against a consumer on another node; returns what the consumer
/// reported, or why it was reported dead, whichever came first.
fn produce(wait_for_room: bool) -> (Option<u64>, Option<DiedReason>) {
    let (producer_node, consumer_node) = (node(), node());
    let consumer = consumer_node.spawn(consumer).expect("spawn");
    producer_node
        .run(move |p| async move {
            p.monitor(consumer);
            p.send(consumer, p.self_pid());
            let message = vec![7u8; MESSAGE_BYTES];
            for _ in 0..MESSAGES {
                if wait_for_room {
                    p.wait_for_room(consumer.node).await;
                    assert!(p.queued_bytes(consumer.node) < 64 * 1024);
                }
                p.send(consumer, message.clone());
            }
            // The first of: the consumer's count, or news of its death.
            let first = p
                .receive_timeout(
                    DEADLINE,
                    vec![
                        match_type(|bytes: u64| Ok(bytes)),
                        match_type(|n: ProcessMonitorNotification| Err(n.reason)),
                    ],
                )
                .await;
            match first {
                Some(Ok(bytes)) => (Some(bytes), None),
                Some(Err(reason)) => (None, Some(reason)),
                None => (None, None),
            }
        })
        .expect("run")
}

#[test]
fn a_producer_that_waits_for_room_never_breaks_its_connection() {
    let (received, died) = produce(true);
    assert_eq!(died, None);
    assert_eq!(received, Some(MESSAGES * MESSAGE_BYTES as u64));
}

#[test]
fn a_producer_that_ignores_backpressure_still_gets_its_connection_broken() {
    let (received, died) = produce(false);
    assert_eq!(received, None);
    assert_eq!(died, Some(DiedReason::Disconnect));
}

#[test]
fn a_high_water_mark_that_leaves_no_room_for_a_frame_is_refused_at_bind() {
    let config = limits().queued_bytes_high_water(256 * 1024);
    let err = Node::tcp(config, NodeConfig::default()).expect_err("refused");
    assert!(err.to_string().contains("queued_bytes_high_water"), "{err}");
}

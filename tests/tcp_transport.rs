//! The TCP transport over loopback: each test drives real transports with its own
//! `mio::Poll` loops (all in the test's thread), and plays misbehaving peers with plain
//! sockets. Loops run until the expected event or a generous deadline; nothing waits on
//! the clock for a condition.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use hyperion::transport::tcp::{TcpConfig, TcpTransport};
use hyperion::transport::{Transport, TransportEvent};
use hyperion::wire::handshake::{
    Handshake, Hello, Nonce, Role, Step, Verdict, HANDSHAKE_BYTES_MAX, PROTOCOL_VERSION,
};
use hyperion::wire::{Cookie, FrameReader};
use hyperion::{BuildId, NodeId};

/// Long enough for anything that should happen on loopback; reached only on failure.
const DEADLINE: Duration = Duration::from_secs(30);
/// How long one turn of a loop waits in `poll`, so several endpoints take turns.
const TURN: Duration = Duration::from_millis(2);

fn cookie() -> Cookie {
    Cookie::new("the test cluster's cookie").unwrap()
}

fn config() -> TcpConfig {
    TcpConfig::bind("127.0.0.1:0").cookie(cookie())
}

/// One transport and the poll loop a node driver would run for it.
struct Endpoint {
    transport: TcpTransport,
    poll: mio::Poll,
    events: mio::Events,
    /// Every event the transport reported, in order.
    seen: Vec<TransportEvent>,
}

impl Endpoint {
    fn new(config: TcpConfig, incarnation: u64) -> Endpoint {
        // `RUST_LOG=hyperion=debug` shows what the transports did, for a failing test.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        let transport = TcpTransport::bind(config, incarnation).unwrap();
        let poll = mio::Poll::new().unwrap();
        transport.register(poll.registry()).unwrap();
        Endpoint {
            transport,
            poll,
            events: mio::Events::with_capacity(64),
            seen: Vec::new(),
        }
    }

    fn id(&self) -> NodeId {
        self.transport.local_node_id()
    }

    fn send(&mut self, peer: NodeId, body: &[u8]) {
        self.transport.send(peer, body.to_vec());
    }

    /// One driver turn: flush, poll, events, timers.
    fn turn(&mut self) {
        let mut out = Vec::new();
        self.transport.flush(&mut out);
        let timeout = self
            .transport
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
            .map_or(TURN, |until| until.min(TURN));
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => panic!("poll failed: {err}"),
        }
        for event in self.events.iter() {
            self.transport.on_event(event, &mut out);
        }
        self.transport.on_timer(Instant::now(), &mut out);
        // One event per frame, as the tests compare them.
        self.seen
            .extend(out.into_iter().flat_map(TransportEvent::one_per_frame));
    }

    fn received_from(&self, peer: NodeId) -> Vec<Vec<u8>> {
        self.seen
            .iter()
            .filter_map(|event| match event {
                TransportEvent::Received(from, body) if *from == peer => Some(body.clone()),
                _ => None,
            })
            .collect()
    }

    fn count(&self, wanted: &TransportEvent) -> usize {
        self.seen.iter().filter(|event| *event == wanted).count()
    }

    /// Events about any peer other than `allowed`.
    fn events_about_others(&self, allowed: &[NodeId]) -> Vec<TransportEvent> {
        self.seen
            .iter()
            .filter(|event| {
                let peer = match event {
                    TransportEvent::PeerConnected(peer)
                    | TransportEvent::PeerLost(peer)
                    | TransportEvent::Received(peer, _)
                    | TransportEvent::ReceivedBatch(peer, _) => peer,
                };
                !allowed.contains(peer)
            })
            .cloned()
            .collect()
    }
}

/// Turns every endpoint until `done` holds; panics with what each saw at the deadline.
fn drive(endpoints: &mut [&mut Endpoint], mut done: impl FnMut(&[&mut Endpoint]) -> bool) {
    let start = Instant::now();
    while !done(endpoints) {
        if start.elapsed() > DEADLINE {
            let seen: Vec<_> = endpoints
                .iter()
                .map(|endpoint| {
                    endpoint
                        .seen
                        .iter()
                        .map(|event| match event {
                            TransportEvent::Received(peer, body) => {
                                format!("Received({peer}, {} bytes)", body.len())
                            }
                            other => format!("{other:?}"),
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            panic!("condition not reached before the deadline; events seen: {seen:#?}");
        }
        for endpoint in endpoints.iter_mut() {
            endpoint.turn();
        }
    }
}

fn body(n: usize) -> Vec<u8> {
    // Sizes from empty to 200 KiB, content tied to the index.
    let length = match n % 7 {
        0 => 0,
        1 => 1,
        2 => 200 * 1024,
        _ => n % 1500,
    };
    let mut body = (n as u32).to_be_bytes().to_vec();
    body.resize(4 + length, (n % 251) as u8);
    body
}

/// Connects `a` to `b` with one frame and waits until both report the connection.
fn connect(a: &mut Endpoint, b: &mut Endpoint) {
    let (a_id, b_id) = (a.id(), b.id());
    a.send(b_id, b"hello");
    drive(&mut [a, b], |e| {
        e[0].count(&TransportEvent::PeerConnected(b_id)) == 1
            && e[1].received_from(a_id) == [b"hello".to_vec()]
    });
}

#[test]
fn frames_arrive_complete_and_in_order_in_both_directions() {
    let mut a = Endpoint::new(config(), 1);
    let mut b = Endpoint::new(config(), 2);
    let (a_id, b_id) = (a.id(), b.id());
    const FRAMES: usize = 300;
    // Queued before any connection exists: they wait for the handshake.
    for n in 0..FRAMES {
        a.send(b_id, &body(n));
        b.send(a_id, &body(n + 1_000_000));
    }
    drive(&mut [&mut a, &mut b], |e| {
        e[1].received_from(a_id).len() == FRAMES && e[0].received_from(b_id).len() == FRAMES
    });
    let expected: Vec<Vec<u8>> = (0..FRAMES).map(body).collect();
    assert_eq!(b.received_from(a_id), expected);
    let expected: Vec<Vec<u8>> = (0..FRAMES).map(|n| body(n + 1_000_000)).collect();
    assert_eq!(a.received_from(b_id), expected);
    assert_eq!(a.count(&TransportEvent::PeerConnected(b_id)), 1);
    assert_eq!(b.count(&TransportEvent::PeerConnected(a_id)), 1);
    assert_eq!(a.count(&TransportEvent::PeerLost(b_id)), 0);
    assert_eq!(b.count(&TransportEvent::PeerLost(a_id)), 0);
    assert_eq!(a.transport.connected_peers(), [b_id]);
    assert_eq!(a.transport.open_connections(), 1);
    assert_eq!(b.transport.open_connections(), 1);
}

#[test]
fn a_peer_that_drops_its_socket_is_reported_lost() {
    let mut a = Endpoint::new(config(), 1);
    let mut b = Endpoint::new(config(), 2);
    let b_id = b.id();
    connect(&mut a, &mut b);
    drop(b);
    drive(&mut [&mut a], |e| {
        e[0].count(&TransportEvent::PeerLost(b_id)) == 1
    });
    assert_eq!(a.transport.open_connections(), 0);
    assert!(a.transport.connected_peers().is_empty());
}

#[test]
fn shutdown_closes_every_connection_and_peers_see_it_lost() {
    let mut a = Endpoint::new(config(), 1);
    let mut b = Endpoint::new(config(), 2);
    let mut c = Endpoint::new(config(), 3);
    let a_id = a.id();
    connect(&mut b, &mut a);
    connect(&mut c, &mut a);
    a.transport.shutdown();
    drive(&mut [&mut a, &mut b, &mut c], |e| {
        e[1].count(&TransportEvent::PeerLost(a_id)) == 1
            && e[2].count(&TransportEvent::PeerLost(a_id)) == 1
    });
    assert_eq!(a.transport.open_connections(), 0);
    // Shutting down reports nothing locally.
    assert!(!a
        .seen
        .iter()
        .any(|event| matches!(event, TransportEvent::PeerLost(_))));
}

#[test]
fn disconnect_is_reported_to_the_peer_and_a_later_send_reconnects() {
    let mut a = Endpoint::new(config(), 1);
    let mut b = Endpoint::new(config(), 2);
    let (a_id, b_id) = (a.id(), b.id());
    connect(&mut a, &mut b);
    a.transport.disconnect(b_id);
    drive(&mut [&mut a, &mut b], |e| {
        e[1].count(&TransportEvent::PeerLost(a_id)) == 1
    });
    assert_eq!(a.count(&TransportEvent::PeerLost(b_id)), 0);
    a.send(b_id, b"again");
    drive(&mut [&mut a, &mut b], |e| {
        e[1].received_from(a_id).len() == 2
    });
    assert_eq!(b.received_from(a_id)[1], b"again");
    assert_eq!(b.count(&TransportEvent::PeerConnected(a_id)), 2);
}

#[test]
fn simultaneous_dials_settle_on_one_connection_without_a_loss() {
    // Timing decides which of the verdict paths runs; repeat to cover several.
    for round in 0..10 {
        let mut a = Endpoint::new(config(), 1);
        let mut b = Endpoint::new(config(), 2);
        let (a_id, b_id) = (a.id(), b.id());
        for n in 0..20 {
            a.send(b_id, &body(n));
            b.send(a_id, &body(n + 100));
        }
        drive(&mut [&mut a, &mut b], |e| {
            e[1].received_from(a_id).len() == 20
                && e[0].received_from(b_id).len() == 20
                && e[0].transport.open_connections() == 1
                && e[1].transport.open_connections() == 1
        });
        assert_eq!(
            b.received_from(a_id),
            (0..20).map(body).collect::<Vec<_>>(),
            "round {round}"
        );
        assert_eq!(
            a.received_from(b_id),
            (100..120).map(body).collect::<Vec<_>>(),
            "round {round}"
        );
        for (endpoint, peer) in [(&a, b_id), (&b, a_id)] {
            assert_eq!(
                endpoint.count(&TransportEvent::PeerConnected(peer)),
                1,
                "round {round}"
            );
            assert_eq!(
                endpoint.count(&TransportEvent::PeerLost(peer)),
                0,
                "round {round}"
            );
        }
    }
}

#[test]
fn an_address_now_held_by_another_incarnation_is_reported_lost() {
    let mut a = Endpoint::new(config(), 1);
    let mut b = Endpoint::new(config(), 2);
    let gone = NodeId {
        address: b.id().address,
        incarnation: 1234,
    };
    a.send(gone, b"for the old node");
    drive(&mut [&mut a, &mut b], |e| {
        e[0].count(&TransportEvent::PeerLost(gone)) == 1 && e[1].transport.open_connections() == 0
    });
    assert!(b.seen.is_empty(), "{:?}", b.seen);
    assert_eq!(a.transport.open_connections(), 0);
}

#[test]
fn a_refused_connect_is_reported_lost() {
    let mut a = Endpoint::new(config(), 1);
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let nobody = NodeId {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        incarnation: 1,
    };
    a.send(nobody, b"anyone?");
    drive(&mut [&mut a], |e| {
        e[0].count(&TransportEvent::PeerLost(nobody)) == 1
    });
    assert_eq!(a.transport.open_connections(), 0);
}

#[test]
fn a_queue_over_its_limit_breaks_the_connection_and_reports_it_lost() {
    let mut a = Endpoint::new(config().frame_bytes_max(1024).queued_bytes_max(4096), 1);
    let mut b = Endpoint::new(config(), 2);
    let (a_id, b_id) = (a.id(), b.id());
    connect(&mut a, &mut b);
    // Without a flush in between, the fifth frame of 1000 bytes exceeds 4096 queued.
    for _ in 0..5 {
        a.send(b_id, &[7; 1000]);
    }
    drive(&mut [&mut a, &mut b], |e| {
        e[0].count(&TransportEvent::PeerLost(b_id)) == 1
            && e[1].count(&TransportEvent::PeerLost(a_id)) == 1
    });
    // The frames queued on the broken connection are lost, none delivered.
    assert_eq!(b.received_from(a_id), [b"hello".to_vec()]);
}

/// The same through `send_with` on the established connection (the sender's fast
/// path): the frame that crosses the limit breaks the connection once, and it is
/// neither queued again nor delivered.
#[test]
fn a_queue_over_its_limit_by_send_with_breaks_the_connection_once() {
    let mut a = Endpoint::new(config().frame_bytes_max(1024).queued_bytes_max(4096), 1);
    let mut b = Endpoint::new(config(), 2);
    let (a_id, b_id) = (a.id(), b.id());
    connect(&mut a, &mut b);
    for _ in 0..5 {
        let sent = a.transport.send_with(b_id, &mut |out: &mut Vec<u8>| {
            out.extend_from_slice(&[7; 1000]);
            Ok(())
        });
        assert_eq!(sent, Ok(()));
    }
    drive(&mut [&mut a, &mut b], |e| {
        e[0].count(&TransportEvent::PeerLost(b_id)) == 1
            && e[1].count(&TransportEvent::PeerLost(a_id)) == 1
    });
    assert_eq!(b.received_from(a_id), [b"hello".to_vec()]);
    assert_eq!(a.transport.open_connections(), 0);
    assert_eq!(a.transport.queued_bytes(b_id), 0);
    // A later send dials afresh, and is the only frame the peer gets on it.
    a.send(b_id, b"again");
    drive(&mut [&mut a, &mut b], |e| {
        e[1].received_from(a_id).len() == 2
    });
    assert_eq!(a.count(&TransportEvent::PeerLost(b_id)), 1);
    assert_eq!(
        b.received_from(a_id),
        [b"hello".to_vec(), b"again".to_vec()]
    );
}

#[test]
fn frames_waiting_for_an_unanswered_handshake_are_bounded_too() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = NodeId {
        address: silent.local_addr().unwrap(),
        incarnation: 1,
    };
    let mut a = Endpoint::new(config().frame_bytes_max(1024).queued_bytes_max(4096), 1);
    for _ in 0..5 {
        a.send(peer, &[7; 1000]);
    }
    drive(&mut [&mut a], |e| {
        e[0].count(&TransportEvent::PeerLost(peer)) == 1
    });
    assert_eq!(a.transport.open_connections(), 0);
}

#[test]
fn a_frame_over_the_limit_is_not_sent_and_breaks_the_connection() {
    let mut a = Endpoint::new(config().frame_bytes_max(1024), 1);
    let mut b = Endpoint::new(config(), 2);
    let (a_id, b_id) = (a.id(), b.id());
    connect(&mut a, &mut b);
    a.send(b_id, &[0; 1025]);
    drive(&mut [&mut a, &mut b], |e| {
        e[0].count(&TransportEvent::PeerLost(b_id)) == 1
            && e[1].count(&TransportEvent::PeerLost(a_id)) == 1
    });
    assert_eq!(b.received_from(a_id).len(), 1);
}

/// Frames written in place by `send_with` arrive as sent ones do, in order with them;
/// one that fails to encode or is over the limit is refused to the caller, and neither
/// breaks the connection nor, to a new peer, opens one.
#[test]
fn send_with_queues_in_place_and_refuses_an_overlong_body_without_breaking_anything() {
    use hyperion::wire::WireError;
    let mut a = Endpoint::new(config().frame_bytes_max(1024), 1);
    let mut b = Endpoint::new(config(), 2);
    let (a_id, b_id) = (a.id(), b.id());
    connect(&mut a, &mut b);
    let write = |bytes: Vec<u8>| {
        move |out: &mut Vec<u8>| -> Result<(), WireError> {
            out.extend_from_slice(&bytes);
            Ok(())
        }
    };
    assert_eq!(
        a.transport.send_with(b_id, &mut write(vec![1; 1024])),
        Ok(())
    );
    assert!(matches!(
        a.transport.send_with(b_id, &mut write(vec![2; 1025])),
        Err(WireError::FrameTooLong {
            length: 1025,
            limit: 1024
        })
    ));
    let refused = a.transport.send_with(b_id, &mut |out: &mut Vec<u8>| {
        out.push(3);
        Err(WireError::Encode("refused".into()))
    });
    assert_eq!(refused, Err(WireError::Encode("refused".into())));
    a.send(b_id, b"after");
    drive(&mut [&mut a, &mut b], |e| {
        e[1].received_from(a_id).len() == 3
    });
    assert_eq!(
        b.received_from(a_id),
        [b"hello".to_vec(), vec![1; 1024], b"after".to_vec()]
    );
    assert_eq!(a.count(&TransportEvent::PeerLost(b_id)), 0);
    assert_eq!(b.count(&TransportEvent::PeerLost(a_id)), 0);

    // To a peer with no connection yet: refused before dialing.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = NodeId {
        address: silent.local_addr().unwrap(),
        incarnation: 1,
    };
    assert!(a
        .transport
        .send_with(peer, &mut write(vec![2; 1025]))
        .is_err());
    assert_eq!(a.transport.open_connections(), 1);
}

#[test]
fn a_wrong_cookie_is_refused_while_a_good_peer_is_served() {
    let mut server = Endpoint::new(config(), 1);
    let mut good = Endpoint::new(config(), 2);
    let mut bad = Endpoint::new(
        TcpConfig::bind("127.0.0.1:0").cookie(Cookie::new("a guess").unwrap()),
        3,
    );
    let (server_id, good_id, bad_id) = (server.id(), good.id(), bad.id());
    bad.send(server_id, b"let me in");
    good.send(server_id, b"one");
    drive(&mut [&mut server, &mut good, &mut bad], |e| {
        e[2].count(&TransportEvent::PeerLost(server_id)) == 1
            && e[0].received_from(good_id).len() == 1
    });
    // And the other way round: the server dials a node with another cookie.
    server.send(bad_id, b"hello?");
    good.send(server_id, b"two");
    drive(&mut [&mut server, &mut good, &mut bad], |e| {
        e[0].count(&TransportEvent::PeerLost(bad_id)) == 1 && e[0].received_from(good_id).len() == 2
    });
    assert_eq!(
        server.events_about_others(&[good_id]),
        [TransportEvent::PeerLost(bad_id)]
    );
    assert_eq!(
        bad.events_about_others(&[]),
        [TransportEvent::PeerLost(server_id)]
    );
    assert_eq!(
        server.received_from(good_id),
        [b"one".to_vec(), b"two".to_vec()]
    );
}

/// A plain socket to play a misbehaving client.
struct RawClient {
    stream: TcpStream,
}

impl RawClient {
    fn connect(to: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(to).unwrap();
        stream.set_nonblocking(true).unwrap();
        RawClient { stream }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.stream.set_nonblocking(false).unwrap();
        self.stream.write_all(bytes).unwrap();
        self.stream.set_nonblocking(true).unwrap();
    }

    /// Whether the other side closed the connection (what it sent is discarded).
    fn is_closed(&mut self) -> bool {
        let mut buffer = [0u8; 1024];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn raw_id(port: u16) -> NodeId {
    NodeId {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        incarnation: 99,
    }
}

/// A handshake timeout no test reaches: a refusal under it comes from parsing, not time.
const NEVER: Duration = Duration::from_secs(3600);

/// A raw client sends `bytes` and stalls; the server (with `handshake_timeout`) must
/// close it while a good peer's frames keep arriving, and report nothing about it.
fn assert_refused_while_serving(bytes: &[u8], handshake_timeout: Duration) {
    let mut server = Endpoint::new(config().handshake_timeout(handshake_timeout), 1);
    let mut good = Endpoint::new(config(), 2);
    let (server_id, good_id) = (server.id(), good.id());
    let mut raw = RawClient::connect(server_id.address);
    raw.write(bytes);
    good.send(server_id, b"one");
    let mut closed = false;
    drive(&mut [&mut server, &mut good], |e| {
        closed = closed || raw.is_closed();
        closed && e[0].received_from(good_id).len() == 1
    });
    good.send(server_id, b"two");
    drive(&mut [&mut server, &mut good], |e| {
        e[0].received_from(good_id).len() == 2
    });
    assert_eq!(server.events_about_others(&[good_id]), []);
    assert_eq!(
        server.received_from(good_id),
        [b"one".to_vec(), b"two".to_vec()]
    );
    assert_eq!(server.transport.open_connections(), 1);
}

#[test]
fn a_client_of_another_protocol_version_is_refused() {
    let hello = Hello {
        version: PROTOCOL_VERSION + 1,
        role: Role::Initiator,
        node: raw_id(1),
        nonce: Nonce([1; 32]),

        build: BuildId::fixed(),
    };
    assert_refused_while_serving(&framed(&hello.encode()), NEVER);
}

#[test]
fn a_client_with_the_wrong_magic_is_refused() {
    let mut hello = Hello {
        version: PROTOCOL_VERSION,
        role: Role::Initiator,
        node: raw_id(1),
        nonce: Nonce([1; 32]),

        build: BuildId::fixed(),
    }
    .encode();
    hello[0] ^= 0xff;
    assert_refused_while_serving(&framed(&hello), NEVER);
}

#[test]
fn a_garbage_stream_is_refused() {
    assert_refused_while_serving(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", NEVER);
    assert_refused_while_serving(&framed(&[0x5a; 40]), NEVER);
}

#[test]
fn a_four_gib_length_prefix_is_refused() {
    assert_refused_while_serving(&[0xff, 0xff, 0xff, 0xff], NEVER);
}

#[test]
fn half_a_frame_then_a_stall_is_dropped_at_the_handshake_timeout() {
    let hello = Hello {
        version: PROTOCOL_VERSION,
        role: Role::Initiator,
        node: raw_id(1),
        nonce: Nonce([1; 32]),

        build: BuildId::fixed(),
    };
    let whole = framed(&hello.encode());
    assert_refused_while_serving(&whole[..whole.len() / 2], Duration::from_secs(1));
}

#[test]
fn over_the_limit_the_oldest_connection_without_a_hello_gives_way() {
    let mut server = Endpoint::new(
        config()
            .inbound_handshakes_max(2)
            .handshake_timeout(NEVER)
            .hello_timeout(NEVER),
        1,
    );
    let address = server.id().address;
    let mut first = RawClient::connect(address);
    let mut second = RawClient::connect(address);
    drive(&mut [&mut server], |e| {
        e[0].transport.open_connections() == 2
    });
    let mut third = RawClient::connect(address);
    let mut closed = false;
    drive(&mut [&mut server], |_| {
        closed = closed || first.is_closed();
        closed
    });
    assert!(!second.is_closed() && !third.is_closed());
    assert_eq!(server.transport.open_connections(), 2);
}

#[test]
fn over_the_per_source_limit_that_sources_oldest_connection_gives_way() {
    let mut server = Endpoint::new(
        config()
            .inbound_handshakes_per_source_max(2)
            .handshake_timeout(NEVER)
            .hello_timeout(NEVER),
        1,
    );
    let address = server.id().address;
    let mut first = RawClient::connect(address);
    // A hello does not protect a connection from its own source's newcomers.
    let hello = Hello {
        version: PROTOCOL_VERSION,
        role: Role::Initiator,
        node: raw_id(1),
        nonce: Nonce([1; 32]),

        build: BuildId::fixed(),
    };
    first.write(&framed(&hello.encode()));
    let mut second = RawClient::connect(address);
    drive(&mut [&mut server], |e| {
        e[0].transport.open_connections() == 2
    });
    let mut third = RawClient::connect(address);
    let mut closed = false;
    drive(&mut [&mut server], |_| {
        closed = closed || first.is_closed();
        closed
    });
    assert!(!second.is_closed() && !third.is_closed());
    assert_eq!(server.transport.open_connections(), 2);
}

#[test]
fn a_connection_that_sends_no_hello_is_dropped_at_the_hello_timeout() {
    // The handshake timeout is never reached: only the hello timeout can close it.
    let mut server = Endpoint::new(
        config()
            .handshake_timeout(NEVER)
            .hello_timeout(Duration::from_millis(200)),
        1,
    );
    let mut good = Endpoint::new(config(), 2);
    let (server_id, good_id) = (server.id(), good.id());
    let mut idle = RawClient::connect(server_id.address);
    let mut slow = RawClient::connect(server_id.address);
    slow.write(&[0, 0]); // half a length prefix, then nothing
    good.send(server_id, b"one");
    let (mut idle_closed, mut slow_closed) = (false, false);
    drive(&mut [&mut server, &mut good], |e| {
        idle_closed = idle_closed || idle.is_closed();
        slow_closed = slow_closed || slow.is_closed();
        idle_closed && slow_closed && e[0].received_from(good_id).len() == 1
    });
    assert_eq!(server.events_about_others(&[good_id]), []);
    assert_eq!(server.transport.open_connections(), 1);
}

// ---- peers that run the handshake by hand (blocking, on their own thread) ------------

fn write_message(stream: &mut TcpStream, body: &[u8]) {
    stream.write_all(&framed(body)).unwrap();
}

fn read_message(stream: &mut TcpStream) -> Vec<u8> {
    let mut reader = FrameReader::with_limit(HANDSHAKE_BYTES_MAX.max(64 * 1024));
    let mut buffer = [0u8; 1];
    // One byte at a time: nothing past this message may be consumed.
    loop {
        if let Some(body) = reader.next_frame().unwrap() {
            return body;
        }
        stream.read_exact(&mut buffer).unwrap();
        reader.push(&buffer);
    }
}

fn blocking(stream: &TcpStream) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
}

/// Dials `to` as `me` and runs the initiator's side up to the verdict.
fn dial_by_hand(to: SocketAddr, me: NodeId, nonce: u8) -> (TcpStream, Handshake, Verdict) {
    let mut stream = TcpStream::connect(to).unwrap();
    blocking(&stream);
    let mut handshake = Handshake::initiate(me, cookie(), Nonce([nonce; 32]));
    write_message(&mut stream, handshake.hello());
    let hello = read_message(&mut stream);
    let Ok(Step::Hello {
        reply: Some(proof), ..
    }) = handshake.receive(&hello)
    else {
        panic!("the server's hello is refused");
    };
    write_message(&mut stream, &proof);
    let verdict = read_message(&mut stream);
    let Ok(Step::Verdict { verdict, .. }) = handshake.receive(&verdict) else {
        panic!("the server's verdict is refused");
    };
    (stream, handshake, verdict)
}

/// Accepts one connection on `listener` as `me` and accepts it.
fn accept_by_hand(listener: &TcpListener, me: NodeId) -> TcpStream {
    let (mut stream, _) = listener.accept().unwrap();
    blocking(&stream);
    let mut handshake = Handshake::accept(me, cookie(), Nonce([0x44; 32]));
    write_message(&mut stream, handshake.hello());
    let hello = read_message(&mut stream);
    assert!(matches!(handshake.receive(&hello), Ok(Step::Hello { .. })));
    let proof = read_message(&mut stream);
    assert!(matches!(handshake.receive(&proof), Ok(Step::Proven { .. })));
    write_message(&mut stream, &handshake.decide(Verdict::Accept).unwrap());
    stream
}

/// Turns `endpoint` until `done` holds and `peer_thread` has finished; returns its result.
fn drive_with<T>(
    endpoint: &mut Endpoint,
    peer_thread: thread::JoinHandle<T>,
    mut done: impl FnMut(&Endpoint) -> bool,
) -> T {
    drive(&mut [endpoint], |e| {
        peer_thread.is_finished() && done(&*e[0])
    });
    peer_thread.join().unwrap()
}

#[test]
fn a_four_gib_length_prefix_from_an_authenticated_peer_breaks_its_connection() {
    let mut server = Endpoint::new(config(), 1);
    let address = server.id().address;
    let me = raw_id(7);
    let peer = thread::spawn(move || {
        let (mut stream, _, verdict) = dial_by_hand(address, me, 1);
        assert_eq!(verdict, Verdict::Accept);
        write_message(&mut stream, b"a real frame");
        stream.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
        // Wait for the server to hang up.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    });
    drive_with(&mut server, peer, |e| {
        e.count(&TransportEvent::PeerLost(me)) == 1
    });
    assert_eq!(
        server.seen,
        [
            TransportEvent::PeerConnected(me),
            TransportEvent::Received(me, b"a real frame".to_vec()),
            TransportEvent::PeerLost(me),
        ]
    );
}

#[test]
fn a_peer_that_redials_while_its_old_connection_looks_alive_replaces_it() {
    let mut server = Endpoint::new(config(), 1);
    let address = server.id().address;
    let me = raw_id(7);
    let peer = thread::spawn(move || {
        let (mut old, _, verdict) = dial_by_hand(address, me, 1);
        assert_eq!(verdict, Verdict::Accept);
        // The old connection stays open: the server cannot know it is dead to us.
        let (mut new, mut handshake, verdict) = dial_by_hand(address, me, 2);
        assert_eq!(verdict, Verdict::Alive);
        write_message(&mut new, &handshake.replace().unwrap());
        write_message(&mut new, b"on the new connection");
        // The server closes the old one.
        let mut rest = Vec::new();
        let _ = old.read_to_end(&mut rest);
        new
    });
    let _new = drive_with(&mut server, peer, |e| e.received_from(me).len() == 1);
    assert_eq!(
        server.seen,
        [
            TransportEvent::PeerConnected(me),
            TransportEvent::PeerLost(me),
            TransportEvent::PeerConnected(me),
            TransportEvent::Received(me, b"on the new connection".to_vec()),
        ]
    );
    assert_eq!(server.transport.open_connections(), 1);
}

/// The server dials a peer while that peer dials the server (the peer's listener is a
/// plain socket that answers only when the test says so).
fn simultaneous_dial(
    server_ip: [u8; 4],
    peer_ip: [u8; 4],
) -> (Verdict, Vec<TransportEvent>, NodeId) {
    let mut server = Endpoint::new(
        TcpConfig::bind(SocketAddr::from((server_ip, 0))).cookie(cookie()),
        1,
    );
    let server_address = server.id().address;
    let listener = TcpListener::bind(SocketAddr::from((peer_ip, 0))).unwrap();
    let me = NodeId {
        address: listener.local_addr().unwrap(),
        incarnation: 5,
    };
    // The server starts dialing at once; its handshake waits for the peer's listener.
    server.send(me, b"queued while dialing");
    let peer = thread::spawn(move || {
        let (mut stream, _, verdict) = dial_by_hand(server_address, me, 1);
        if verdict == Verdict::Decline {
            // The server keeps its own dial: answer it, and the frame comes on it.
            drop(stream);
            stream = accept_by_hand(&listener, me);
        }
        assert_eq!(read_message(&mut stream), b"queued while dialing");
        // Kept open: the connection stays up until the test ends.
        (verdict, stream)
    });
    let (verdict, _stream) = drive_with(&mut server, peer, |e| {
        e.count(&TransportEvent::PeerConnected(me)) == 1
    });
    drive(&mut [&mut server], |e| {
        e[0].transport.open_connections() == 1
    });
    (verdict, server.seen, me)
}

#[test]
fn a_simultaneous_dial_from_a_larger_id_is_declined_and_ours_is_used() {
    let (verdict, seen, me) = simultaneous_dial([127, 0, 0, 1], [127, 0, 0, 2]);
    assert_eq!(verdict, Verdict::Decline);
    assert_eq!(seen, [TransportEvent::PeerConnected(me)]);
}

#[test]
fn a_simultaneous_dial_from_a_smaller_id_is_accepted_and_ours_abandoned() {
    let (verdict, seen, me) = simultaneous_dial([127, 0, 0, 2], [127, 0, 0, 1]);
    assert_eq!(verdict, Verdict::Accept);
    assert_eq!(seen, [TransportEvent::PeerConnected(me)]);
}

//! Resources of connections that have not proven the cookie yet: a flood of idle and
//! slowloris connections cannot lock good peers out, and a node takes many peers
//! connecting at once. Over real TCP on loopback; loops wait on conditions with a
//! generous deadline, never on the clock.

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use hyperion::transport::tcp::{TcpConfig, TcpTransport};
use hyperion::transport::{Transport, TransportEvent};
use hyperion::wire::Cookie;
use hyperion::{match_type, Closure, NodeId, Process, ProcessId, RemoteTable};
use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

/// Long enough for anything that should happen on loopback; reached only on failure.
const DEADLINE: Duration = Duration::from_secs(60);

fn cookie() -> Cookie {
    Cookie::new("test-cookie").unwrap()
}

/// A blocking connection to `to` from the loopback address `from`.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let fd: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("a socket");
    let [a, b, c, d] = from.octets();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(a, b, c, d, 0),
    )
    .expect("bind");
    let SocketAddr::V4(to) = to else {
        panic!("an IPv4 node address")
    };
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(to)).expect("connect");
    TcpStream::from(fd)
}

fn echo_table() -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register("echo", |p: Process, count: u32| async move {
        for _ in 0..count {
            let (from, n): (ProcessId, u64) = p.expect().await;
            p.send(from, n);
        }
    });
    table
}

#[test]
fn a_flood_of_idle_and_slowloris_connections_from_one_address_does_not_lock_out_a_good_peer() {
    let server = common::tcp_node(echo_table());
    let server_id = server.id();
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    // More idle connections than one source may hold, and slowloris ones that send the
    // start of a length prefix and then a byte now and then.
    let mut idle = Vec::new();
    for _ in 0..1100 {
        idle.push(connect_from(attacker, server_id.address));
    }
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut stream = connect_from(attacker, server_id.address);
        let _ = stream.write_all(&[0]);
        slow.push(stream);
    }
    let client = common::tcp_node(RemoteTable::new());
    let answer = client
        .run(move |p| async move {
            let echo = p
                .spawn(server_id, Closure::new("echo", &1u32).unwrap())
                .await
                .map_err(|err| err.to_string())?;
            p.send(echo, (p.self_pid(), 7u64));
            Ok::<_, String>(
                p.receive_timeout(DEADLINE, vec![match_type(|n: u64| n)])
                    .await,
            )
        })
        .unwrap();
    for stream in &mut slow {
        let _ = stream.write_all(&[0]);
    }
    assert_eq!(answer, Ok(Some(7)));
    drop((idle, slow));
}

/// One transport and the poll loop a node driver would run for it.
struct Endpoint {
    transport: TcpTransport,
    poll: mio::Poll,
    events: mio::Events,
    seen: Vec<TransportEvent>,
}

impl Endpoint {
    fn new(incarnation: u64) -> Endpoint {
        let config = TcpConfig::bind("127.0.0.1:0").cookie(cookie());
        let transport = TcpTransport::bind(config, incarnation).unwrap();
        let poll = mio::Poll::new().unwrap();
        transport.register(poll.registry()).unwrap();
        Endpoint {
            transport,
            poll,
            events: mio::Events::with_capacity(256),
            seen: Vec::new(),
        }
    }

    fn id(&self) -> NodeId {
        self.transport.local_node_id()
    }

    fn turn(&mut self, wait: Duration) {
        let mut out = Vec::new();
        self.transport.flush(&mut out);
        let _ = self.poll.poll(&mut self.events, Some(wait));
        for event in self.events.iter() {
            self.transport.on_event(event, &mut out);
        }
        self.transport.on_timer(Instant::now(), &mut out);
        // One event per frame, as the tests compare them.
        self.seen
            .extend(out.into_iter().flat_map(TransportEvent::one_per_frame));
    }
}

#[test]
fn two_hundred_nodes_connecting_at_once_are_all_accepted_first_time() {
    let mut server = Endpoint::new(1);
    let server_id = server.id();
    let mut clients: Vec<Endpoint> = (0..200).map(|i| Endpoint::new(100 + i)).collect();
    for client in &mut clients {
        client.transport.clone().send(server_id, b"hello".to_vec());
        client.turn(Duration::ZERO); // the connect starts
    }
    let started = Instant::now();
    let connected = |client: &Endpoint| {
        client
            .seen
            .contains(&TransportEvent::PeerConnected(server_id))
    };
    loop {
        server.turn(Duration::from_millis(1));
        for client in &mut clients {
            client.turn(Duration::ZERO);
        }
        let lost: Vec<NodeId> = clients
            .iter()
            .filter(|client| client.seen.contains(&TransportEvent::PeerLost(server_id)))
            .map(Endpoint::id)
            .collect();
        assert_eq!(lost, [], "turned away");
        let received = server
            .seen
            .iter()
            .filter(|event| matches!(event, TransportEvent::Received(..)))
            .count();
        if clients.iter().all(connected) && received == clients.len() {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{} of {} connected, {received} frames received",
            clients.iter().filter(|c| connected(c)).count(),
            clients.len()
        );
    }
}

//! Nodes whose advertised address is a scoped (link-local) IPv6 address: the scope id
//! is part of the node's id, and every encoding of the id keeps it.

mod common;

use std::net::{SocketAddr, SocketAddrV6};
use std::time::Duration;

use hyperion::transport::tcp::TcpConfig;
use hyperion::wire::Cookie;
use hyperion::{match_type, Closure, Node, NodeConfig, Process, ProcessId, RemoteTable};

/// A link-local IPv6 address of this host with its scope id (the interface index), if
/// it has one.
fn link_local_address() -> Option<SocketAddrV6> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|interface| {
        let address = interface.address?;
        let address = address.as_sockaddr_in6()?;
        let ip = address.ip();
        let link_local = ip.segments()[0] & 0xffc0 == 0xfe80;
        (link_local && address.scope_id() != 0)
            .then(|| SocketAddrV6::new(ip, 0, 0, address.scope_id()))
    })
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
fn messages_reach_a_node_advertising_a_scoped_ipv6_address() {
    let Some(address) = link_local_address() else {
        eprintln!("no link-local IPv6 address on this host: nothing to test");
        return;
    };
    let cookie = Cookie::new("test-cookie").unwrap();
    let server = Node::tcp(
        TcpConfig::bind(SocketAddr::V6(address)).cookie(cookie.clone()),
        NodeConfig {
            remote_table: echo_table(),
            ..NodeConfig::default()
        },
    )
    .expect("bind on a link-local address");
    let server_id = server.id();
    let SocketAddr::V6(advertised) = server_id.address else {
        panic!("an IPv6 id: {server_id}")
    };
    assert_eq!(advertised.scope_id(), address.scope_id(), "{server_id}");
    let client = Node::tcp(
        TcpConfig::bind("127.0.0.1:0").cookie(cookie),
        NodeConfig::default(),
    )
    .unwrap();
    let answer = client
        .run(move |p| async move {
            let echo = p
                .spawn(server_id, Closure::new("echo", &1u32).unwrap())
                .await
                .map_err(|err| err.to_string())?;
            p.send(echo, (p.self_pid(), 5u64));
            Ok::<_, String>(
                p.receive_timeout(Duration::from_secs(30), vec![match_type(|n: u64| n)])
                    .await,
            )
        })
        .unwrap();
    assert_eq!(answer, Ok(Some(5)));
}

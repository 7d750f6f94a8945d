//! One program per run over real TCP: a node of another build is refused at the hello
//! (both sides name both builds), so a worker node of another build never serves: the
//! service fails and the worker stops. Builds declared compatible talk.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyperion::remote::{
    with_service, worker, LaunchError, OnRemoteError, RemoteError, ServiceError, ServiceId,
    WorkerConfig, WorkerExit, WorkerLauncher,
};
use hyperion::transport::tcp::TcpConfig;
use hyperion::wire::Cookie;
use hyperion::{BuildId, Node, NodeConfig, NodeId, Process, RemoteTable};

fn node(build: &str) -> Node {
    let transport = TcpConfig::bind("127.0.0.1:0").cookie(Cookie::new("test-cookie").unwrap());
    Node::tcp(
        transport,
        NodeConfig {
            remote_table: RemoteTable::new(),
            build: Some(BuildId::named(build)),
            ..NodeConfig::default()
        },
    )
    .expect("bind on loopback")
}

/// Starts the worker on an existing node of another build.
struct OtherBuild {
    node: Arc<Node>,
    exit: Arc<Mutex<Option<WorkerExit>>>,
}

impl WorkerLauncher for OtherBuild {
    type JobId = ();

    async fn launch(
        &self,
        _p: &Process,
        master: NodeId,
        service: &ServiceId,
    ) -> Result<(), LaunchError> {
        let (service, exit) = (service.clone(), self.exit.clone());
        self.node
            .spawn(move |p| async move {
                // One short attempt: the hello between the nodes is refused at once.
                let config = WorkerConfig {
                    attempts: 1,
                    attempt_timeout: Duration::from_secs(5),
                };
                let ended = worker(&p, master, service, config).await;
                *exit.lock().unwrap() = Some(ended);
            })
            .map(|_| ())
            .map_err(|err| LaunchError {
                what: "a worker on the other node".into(),
                why: err.to_string(),
            })
    }

    fn connection_timeout(&self) -> Option<Duration> {
        // A deadline, not a timing: this worker can never connect.
        Some(Duration::from_secs(10))
    }

    fn on_remote_error(&self, _error: &RemoteError, _retries: u32) -> OnRemoteError {
        OnRemoteError::GiveUp
    }

    fn cancel(&self, _job: &()) {}

    fn on_exit(&self, _job: &()) {}
}

#[test]
fn a_worker_node_of_another_build_never_serves_over_tcp() {
    let master = node("aaaa1111");
    let worker_node = Arc::new(node("bbbb2222"));
    let launcher = OtherBuild {
        node: worker_node.clone(),
        exit: Arc::default(),
    };
    let exit = launcher.exit.clone();
    let outcome = master
        .run(move |p| async move { with_service(&p, &launcher, |_, _| async {}).await })
        .unwrap();
    // Its node's hello was refused: it never connected.
    assert!(
        matches!(outcome, Err(ServiceError::WorkerConnectionTimeout(_))),
        "a worker of another build was accepted: {outcome:?}"
    );
    // The worker cannot reach the master and stops (a generous deadline, not a timing).
    let deadline = Instant::now() + Duration::from_secs(60);
    while exit.lock().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the refused worker did not stop");
        std::thread::sleep(Duration::from_millis(20)); // a poll interval
    }
    assert_eq!(*exit.lock().unwrap(), Some(WorkerExit::NoMaster));
    drop(worker_node);
}

fn node_of(build: BuildId) -> Node {
    let transport = TcpConfig::bind("127.0.0.1:0").cookie(Cookie::new("test-cookie").unwrap());
    let config = NodeConfig {
        build: Some(build),
        ..NodeConfig::default()
    };
    Node::tcp(transport, config).expect("bind on loopback")
}

/// A process on `node` that doubles the number it is sent.
fn doubler(node: &Node) -> hyperion::ProcessId {
    node.spawn(|p| async move {
        let (from, n): (hyperion::ProcessId, u64) = p.expect().await;
        p.send(from, n * 2);
    })
    .expect("the node runs")
}

#[test]
fn a_node_of_another_build_is_refused_at_the_hello_naming_both_builds() {
    let a = node_of(BuildId::named("aaaa1111"));
    let b = node_of(BuildId::named("bbbb2222"));
    let target = doubler(&b);
    // From a node: the connection never comes up, so a monitor of a process that is
    // still alive fires (its node cannot be reached).
    let reason = a
        .run(move |p| async move {
            p.monitor(target);
            p.send(target, (p.self_pid(), 21u64));
            let n: hyperion::ProcessMonitorNotification = p.expect().await;
            n.reason
        })
        .unwrap();
    assert_ne!(reason, hyperion::DiedReason::Normal, "{reason:?}");
    // By hand, to read the refusal: B's hello names its build, and a side of build
    // aaaa1111 refuses it with both builds and what to do.
    let mut stream = std::net::TcpStream::connect(b.id().address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let me = NodeId {
        address: "127.0.0.1:1".parse().unwrap(),
        incarnation: 9,
    };
    let mut handshake = hyperion::wire::handshake::Handshake::initiate(
        me,
        Cookie::new("test-cookie").unwrap(),
        hyperion::wire::handshake::Nonce([7; 32]),
    )
    .with_build(BuildId::named("aaaa1111"));
    let mut hello = Vec::new();
    hyperion::wire::write_frame(&mut hello, handshake.hello(), 1024).unwrap();
    std::io::Write::write_all(&mut stream, &hello).unwrap();
    let mut reader = hyperion::wire::FrameReader::with_limit(1024);
    let their_hello = loop {
        if let Some(body) = reader.next_frame().unwrap() {
            break body;
        }
        let mut buffer = [0u8; 512];
        let read = std::io::Read::read(&mut stream, &mut buffer).expect("B's hello");
        assert!(read > 0, "B closed before its hello");
        reader.push(&buffer[..read]);
    };
    let err = handshake.receive(&their_hello).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("build aaaa1111"), "{text}");
    assert!(text.contains("build bbbb2222"), "{text}");
    assert!(text.contains("runs another build of the program"), "{text}");
    assert!(text.contains("rebuild"), "{text}");
    // B refused our hello too: it closes the connection without a proof.
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut rest);
    assert!(rest.is_empty(), "B answered a hello of another build");
}

#[test]
fn nodes_of_builds_declared_compatible_talk() {
    let a = node_of(BuildId::named("aaaa1111").with_protocol(5));
    let b = node_of(BuildId::named("bbbb2222").with_protocol(5));
    let target = doubler(&b);
    let answer = a
        .run(move |p| async move {
            p.send(target, (p.self_pid(), 21u64));
            p.expect::<u64>().await
        })
        .unwrap();
    assert_eq!(answer, 42);
}

#[test]
fn nodes_declaring_different_protocol_versions_are_refused() {
    let a = node_of(BuildId::named("same").with_protocol(5));
    let b = node_of(BuildId::named("same").with_protocol(6));
    let target = doubler(&b);
    let reason = a
        .run(move |p| async move {
            p.monitor(target);
            p.send(target, (p.self_pid(), 21u64));
            let n: hyperion::ProcessMonitorNotification = p.expect().await;
            n.reason
        })
        .unwrap();
    assert_ne!(reason, hyperion::DiedReason::Normal, "{reason:?}");
}

//! One program per run over real TCP: a worker node of another build is refused by the
//! master, the service fails with an error naming both builds, and the worker stops.

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
                let ended = worker(&p, master, service, WorkerConfig::default()).await;
                *exit.lock().unwrap() = Some(ended);
            })
            .map(|_| ())
            .map_err(|err| LaunchError {
                what: "a worker on the other node".into(),
                why: err.to_string(),
            })
    }

    fn connection_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(60))
    }

    fn on_remote_error(&self, _error: &RemoteError, _retries: u32) -> OnRemoteError {
        OnRemoteError::GiveUp
    }

    fn cancel(&self, _job: &()) {}

    fn on_exit(&self, _job: &()) {}
}

#[test]
fn a_worker_node_of_another_build_is_refused_over_tcp() {
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
    let Err(ServiceError::Launch(err)) = outcome else {
        panic!("a worker of another build was accepted: {outcome:?}");
    };
    let text = err.to_string();
    assert!(text.contains("build aaaa1111"), "{text}");
    assert!(text.contains("build bbbb2222"), "{text}");
    assert!(text.contains("rebuild, or start a new run"), "{text}");
    // The worker hears it was refused and stops (a generous deadline, not a timing).
    let deadline = Instant::now() + Duration::from_secs(60);
    while exit.lock().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the refused worker did not stop");
        std::thread::sleep(Duration::from_millis(20)); // a poll interval
    }
    assert_eq!(*exit.lock().unwrap(), Some(WorkerExit::Refused));
    drop(worker_node);
}

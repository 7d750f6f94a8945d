//! Named scenarios: small distributed programs with their invariants, run by the seed
//! explorer (`cargo run -p hyperion-sim --release -- explore`) and by the property
//! tests. Each returns `Err` with a reason when an invariant fails.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use hyperion::{
    match_if, match_type, Closure, LocalNode, NodeId, Process, ProcessId,
    ProcessMonitorNotification, RemoteTable,
};

use crate::world::{NodeOptions, Sim};

mod agents;
mod arbitration;
mod registry;
mod remote;
mod scan;
mod shapes;
mod silent;

/// A named scenario.
pub struct Scenario {
    /// Its name on the command line.
    pub name: &'static str,
    /// What it checks.
    pub about: &'static str,
    /// Runs it in a world.
    pub run: fn(&mut Sim) -> Result<(), String>,
    /// The coverage probes it claims to reach ([`hyperion::sometimes!`] and
    /// [`hyperion::reached!`], in the library or in the scenario).
    pub probes: &'static [Probe],
    /// A known defect, not fixed yet, that makes some seeds fail: the explorer still
    /// runs the scenario and reports its failures, but they do not fail the run. Remove
    /// the mark when the fix lands.
    pub known_defect: Option<&'static str>,
}

/// A coverage probe a scenario claims to reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The probe's name.
    pub name: &'static str,
    /// Whether a run of enough seeds that never reaches it fails.
    pub required: bool,
}

const fn required(name: &'static str) -> Probe {
    Probe {
        name,
        required: true,
    }
}

const fn optional(name: &'static str) -> Probe {
    Probe {
        name,
        required: false,
    }
}

impl Scenario {
    /// The world the explorer runs this scenario in for `seed`: swarm faults and
    /// buggify on.
    pub fn world(&self, seed: u64) -> Sim {
        Sim::new(seed).buggify()
    }
}

/// Every registered scenario.
pub fn all() -> &'static [Scenario] {
    SCENARIOS
}

const SCENARIOS: &[Scenario] = &[
        Scenario {
            name: "ping_pong",
            about: "2 nodes: 100 pings, 100 ms apart, to a registered server that may crash and restart; replies arrive in order, at most once",
            run: ping_pong,
            probes: &[],
            known_defect: None,
        },
        Scenario {
            name: "monitors",
            about: "5 nodes, 10 rounds: a coordinator spawns workers remotely and monitors them; every worker answers or its monitor fires, exactly once",
            run: monitors,
            probes: &[],
            known_defect: None,
        },
        Scenario {
            name: "handshake",
            about: "a worker started before its master registers the service: it connects, or gives up after 5 x 10 s on its clock, never early",
            run: remote::handshake,
            probes: &[
                required("remote.handshake_retried"),
                required("handshake.worker_gave_up"),
                optional("remote.buggify.slow_handshake"),
                // A break while a hello is in flight: said again within the attempt.
                optional("remote.hello_said_again"),
            ],
            known_defect: None,
        },
        Scenario {
            name: "services",
            about: "with_remote_runner under faults (worker crashes, breaks, partitions, slow nodes, drift): every call ends with its answer or a RemoteError, arguments built once",
            run: remote::services,
            probes: &[
                required("remote.retry"),
                required("services.call_pending"),
                required("remote_error.exception"),
                required("remote_error.pending"),
                required("remote_error.async_failed"),
                optional("remote_error.cancelled"),
                optional("services.gave_up"),
                optional("remote.worker_monitor_disconnect_in_service"),
                optional("remote.buggify.closure_panics"),
                optional("remote.buggify.reply_delayed"),
            ],
            known_defect: None,
        },
        Scenario {
            name: "master_crash",
            about: "the master's node crashes while its service runs calls: the worker stops by itself within the liveness bound",
            run: remote::master_crash,
            probes: &[],
            known_defect: None,
        },
        Scenario {
            name: "several_services",
            about: "two with_service at once in one master process: each worker's hello reaches its own service; a queued hello of an ended service is dropped",
            run: remote::several_services,
            probes: &[
                required("remote.hello_from_unknown_service"),
                required("several_services.stray_hello_queued"),
            ],
            known_defect: None,
        },
        Scenario {
            name: "worker_killed",
            about: "the master kills its worker's process mid-call: the call fails with AsyncLinkFailed, the runner retries on a new worker, and the call answers",
            run: remote::worker_killed,
            probes: &[
                required("remote_error.async_link_failed"),
                required("remote.retry"),
            ],
            known_defect: None,
        },
        Scenario {
            name: "mixed_builds",
            about: "two services at once, one launching workers of another build: it is refused (the error names both builds), its workers end refused, the other service answers",
            run: remote::mixed_builds,
            probes: &[required("mixed_builds.refused")],
            known_defect: None,
        },
        Scenario {
            name: "mixed_shapes",
            about: "two builds declared compatible send messages of one type name in other shapes: a reordered struct stays unmatched (its fingerprint covers the shape), an untraceable one is dropped undecodable with an mx event; never a wrong value",
            run: shapes::mixed_shapes,
            probes: &[
                required("mixed_shapes.unmatched"),
                required("mixed_shapes.undecodable_reported"),
            ],
            known_defect: None,
        },
        Scenario {
            name: "agents",
            about: "mx agents stopped by deactivate, panic, kill, node shutdown, node crash: finalizers run exactly once; concurrent starts under one id: one wins, DuplicateAgentId for the rest",
            run: agents::agents,
            probes: &[],
            known_defect: None,
        },
        Scenario {
            name: "registry",
            about: "names held by local and remote processes that end, are killed, or whose node crashes or stops: released once the world had time to notice",
            run: registry::registry,
            probes: &[],
            known_defect: None,
        },
        Scenario {
            name: "silent_failures",
            about: "3 nodes: a server paused as by SIGSTOP, a partition that holds frames without closing; peers report the silent node lost within the heartbeat bound, replies stay in order, and after healing every server answers within the liveness bound",
            run: silent::silent_failures,
            probes: &[],
            known_defect: None,
        },
        Scenario {
            name: "arbitration",
            about: "4 nodes over connections made as TCP makes them, talking at the same moments: crossed dials, a silent crash (half-open ends), a break noticed late, a pause (a replace); both ends keep one and the same connection, replies in order",
            run: arbitration::arbitration,
            probes: &[
                required("arbitration.crossed_dials_resolved"),
                required("arbitration.half_open_detected"),
                required("arbitration.delayed_close"),
                optional("arbitration.crossed_dials"),
                optional("arbitration.replaced"),
            ],
            known_defect: None,
        },
        Scenario {
            name: "scan",
            about: "the main job (the scan example's own master loop and closures): a master crashes at a random moment, a second resumes from the store; it ends, every point is in its result once and right, nothing committed runs again, no worker outlives it",
            run: scan::scan,
            probes: &[
                required("scan.point_retried"),
                required("scan.worker_replaced"),
                required("runtime.buggify.blocking_job_stalls"),
                optional("scan.resumed"),
                optional("scan.service_restarted"),
                optional("remote.retry"),
            ],
            known_defect: None,
        },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    all().iter().find(|scenario| scenario.name == name)
}

/// Virtual time a scenario may take before it counts as hung.
pub(crate) const SCENARIO_TIME_LIMIT: Duration = Duration::from_secs(600);

fn ping_pong(sim: &mut Sim) -> Result<(), String> {
    let server_node: Rc<Cell<Option<NodeId>>> = Rc::default();
    let published = server_node.clone();
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let client = sim.add_node();
    sim.add_node_with(NodeOptions::crashable().boot(move |node: &LocalNode| {
        published.set(Some(node.id()));
        let pid = node.spawn(echo_server);
        node.register("pong", pid)
            .expect("a fresh node has no names");
    }));
    let replies = sim
        .run_until(&client, move |p| async move {
            let mut replies = Vec::new();
            for n in 0..100u64 {
                let Some(server) = server_node.get() else {
                    continue;
                };
                p.reconnect_node(server);
                p.nsend_remote(server, "pong", (p.self_pid(), n));
                if let Some(reply) = p.expect_timeout::<u64>(Duration::from_secs(1)).await {
                    replies.push(reply);
                }
                p.sleep(Duration::from_millis(100)).await;
            }
            // Late replies still count: they must be in order too.
            while let Some(reply) = p.expect_timeout::<u64>(Duration::from_secs(2)).await {
                replies.push(reply);
            }
            replies
        })
        .map_err(|err| err.to_string())?;
    if let Some(pair) = replies.windows(2).find(|pair| pair[0] >= pair[1]) {
        return Err(format!(
            "replies out of order or duplicated: {} then {}",
            pair[0], pair[1]
        ));
    }
    if sim.fault_plan().break_rate == 0.0
        && sim.fault_plan().partition_rate == 0.0
        && sim.fault_plan().crash_rate == 0.0
        && replies.len() != 100
    {
        return Err(format!(
            "no faults, yet only {} of 100 replies",
            replies.len()
        ));
    }
    Ok(())
}

/// Answers every `(from, n)` with `n`, forever.
async fn echo_server(p: Process) {
    loop {
        let (from, n): (ProcessId, u64) = p.expect().await;
        p.send(from, n);
    }
}

/// The worker the coordinator spawns: squares what it is sent, after a while.
fn worker_table() -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register("square", |p: Process, coordinator: ProcessId| async move {
        let n: u64 = p.expect().await;
        let pause = Duration::from_millis(p.random_u64() % 2000);
        p.sleep(pause).await;
        p.send(coordinator, (p.self_pid(), n * n));
    });
    table
}

fn monitors(sim: &mut Sim) -> Result<(), String> {
    let coordinator = sim.add_node_with(NodeOptions::default().remote_table(worker_table()));
    let workers: Vec<NodeId> = (0..4)
        .map(|_| {
            sim.add_node_with(NodeOptions::crashable().remote_table(worker_table()))
                .id()
        })
        .collect();
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let outcome = sim
        .run_until(&coordinator, move |p| async move {
            let mut totals = (0, 0, 0);
            for _round in 0..ROUNDS {
                let (answered, notified, spawned) = round(&p, &workers).await?;
                totals = (totals.0 + answered, totals.1 + notified, totals.2 + spawned);
            }
            Ok::<_, String>(totals)
        })
        .map_err(|err| err.to_string())?;
    let (answered, notified, spawned) = outcome?;
    if answered + notified != spawned {
        return Err(format!(
            "{spawned} workers, {answered} answered and {notified} reported dead"
        ));
    }
    Ok(())
}

/// Rounds of work in the `monitors` scenario.
const ROUNDS: usize = 10;

/// One round: a worker per node, each answers or is reported dead.
async fn round(p: &Process, workers: &[NodeId]) -> Result<(usize, usize, usize), String> {
    {
        {
            let mut expected = Vec::new();
            for (k, node) in workers.iter().enumerate() {
                let closure = Closure::new("square", &p.self_pid()).expect("encodable");
                match p.spawn(*node, closure).await {
                    Ok(worker) => {
                        let monitor_ref = p.monitor(worker);
                        p.send(worker, k as u64 + 2);
                        expected.push((worker, monitor_ref, k as u64 + 2));
                    }
                    Err(err) => tracing::debug!(%err, "spawn failed under faults"),
                }
            }
            let mut answered = 0;
            let mut notified = 0;
            let mut pending = expected.clone();
            while !pending.is_empty() {
                let event = p
                    .receive_wait(vec![
                        match_type(|(pid, square): (ProcessId, u64)| Ok((pid, square))),
                        match_if(
                            |n: &ProcessMonitorNotification| !n.reason.is_normal(),
                            |n: ProcessMonitorNotification| Err(n.pid),
                        ),
                    ])
                    .await;
                match event {
                    Ok((pid, square)) => {
                        // A worker cut off by a partition (reported Disconnect) may
                        // still answer after the heal: it is no longer pending.
                        let Some(position) = pending.iter().position(|(w, _, _)| *w == pid) else {
                            continue;
                        };
                        let (_, monitor_ref, n) = pending.remove(position);
                        if square != n * n {
                            return Err(format!("{pid} answered {square} for {n}"));
                        }
                        p.unmonitor(monitor_ref);
                        answered += 1;
                    }
                    Err(pid) => {
                        if let Some(position) = pending.iter().position(|(w, _, _)| *w == pid) {
                            pending.remove(position);
                            notified += 1;
                        }
                    }
                }
            }
            Ok((answered, notified, expected.len()))
        }
    }
}

//! Scenarios of hyperion's master/worker layer: the worker handshake, services and
//! remote calls with retries, several services in one master.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use hyperion::remote::{
    with_remote_runner, with_service, worker, RemoteCall, RemoteError, RemoteErrorKind,
    RetryPolicy, RunnerError, ServiceError, ServiceId, WorkerConfig, WorkerExit, WorkerHello,
    WorkerMessage,
};
use hyperion::{
    match_if, match_type, sometimes, BuildId, Closure, Process, ProcessId, RemoteTable,
};

use super::SCENARIO_TIME_LIMIT;
use crate::launcher::SimLauncher;
use crate::world::{NodeOptions, Sim};

/// Whether the world injects no network or crash faults at random.
fn calm(sim: &Sim) -> bool {
    let plan = sim.fault_plan();
    plan.break_rate == 0.0 && plan.partition_rate == 0.0 && plan.crash_rate == 0.0
}

/// A worker started before its master registers the service: it says hello up to 5
/// times, 10 s apart, and either connects (then ends by `ShutDown`, or by losing its
/// master) or gives up, never before 5 × 10 s on its own clock.
pub(super) fn handshake(sim: &mut Sim) -> Result<(), String> {
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let master = sim.add_node();
    let master_id = master.id();
    let service = ServiceId::from_text("handshake-service");
    let config = WorkerConfig::default();
    let ended: Rc<RefCell<Option<(WorkerExit, Duration)>>> = Rc::default();
    let record = ended.clone();
    let for_worker = service.clone();
    sim.add_node_with(NodeOptions::default().boot(move |node| {
        let (record, service) = (record.clone(), for_worker.clone());
        node.spawn(move |p| async move {
            let started = p.now();
            let exit = worker(&p, master_id, service, config).await;
            *record.borrow_mut() = Some((exit, p.now() - started));
        });
    }));
    let registered_after = sim
        .run_until(&master, move |p| async move {
            // Registers late: from at once to past the worker's last hello.
            let delay = Duration::from_millis(p.random_u64() % 70_000);
            p.sleep(delay).await;
            p.register(service.as_str(), p.self_pid())
                .expect("a fresh name");
            let hello = p
                .receive_timeout(
                    Duration::from_secs(60),
                    vec![match_type(|hello: WorkerHello| hello)],
                )
                .await;
            if let Some(hello) = hello {
                p.send_chan(hello.reply, WorkerMessage::Connected);
                p.sleep(Duration::from_secs(1)).await;
                p.reconnect(hello.pid);
                p.send(hello.pid, WorkerMessage::ShutDown);
            }
            delay
        })
        .map_err(|err| err.to_string())?;
    sim.run_for(Duration::from_secs(120));
    let Some((exit, took)) = ended.borrow().clone() else {
        return Err("the worker never ended".to_string());
    };
    let give_up = config.attempt_timeout * config.attempts;
    let slowed = sim
        .probes()
        .get("remote.buggify.slow_handshake")
        .is_some_and(|count| count.reached > 0);
    match exit {
        WorkerExit::Refused => {
            return Err("the worker was refused though every node runs one build".into());
        }
        WorkerExit::NoMaster => {
            sim.sometimes("handshake.worker_gave_up", true);
            if took < give_up {
                return Err(format!(
                    "the worker gave up after {took:?}, before {give_up:?}"
                ));
            }
            if !slowed && took > give_up + Duration::from_secs(1) {
                return Err(format!("the worker gave up late, after {took:?}"));
            }
            // Registered well before the last hello, in a calm world: it must connect.
            if calm(sim)
                && !slowed
                && registered_after + Duration::from_secs(5) < give_up - config.attempt_timeout
            {
                return Err(format!(
                    "registered after {registered_after:?}, in a calm world, yet the worker gave up"
                ));
            }
        }
        WorkerExit::ShutDown | WorkerExit::MasterLost => {
            if registered_after > give_up + Duration::from_secs(1) && !slowed {
                return Err(format!(
                    "connected though the master registered after {registered_after:?}"
                ));
            }
        }
    }
    Ok(())
}

/// The closures the services scenarios call.
fn table() -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register_call("square", |_p: Process, x: u64| async move {
        Ok::<_, String>(x * x)
    });
    table.register_call("slow_square", |p: Process, x: u64| async move {
        p.sleep(Duration::from_secs(5)).await;
        Ok::<_, String>(x * x)
    });
    table.register_call("fail", |_p: Process, why: String| async move {
        Err::<u64, _>(why)
    });
    table
}

/// Records which kind of `RemoteError` a scenario produced (every kind must be
/// produced by some scenario).
fn probe_kind(error: &RemoteError) {
    match &error.kind {
        RemoteErrorKind::AsyncFailed(_) => hyperion::reached!("remote_error.async_failed"),
        RemoteErrorKind::AsyncLinkFailed(_) => {
            hyperion::reached!("remote_error.async_link_failed")
        }
        RemoteErrorKind::Cancelled => hyperion::reached!("remote_error.cancelled"),
        RemoteErrorKind::Pending => hyperion::reached!("remote_error.pending"),
        RemoteErrorKind::Exception(_) => hyperion::reached!("remote_error.exception"),
    }
}

/// `with_remote_runner` under the world's faults (worker nodes may crash; links break
/// and partition; nodes run slow; clocks drift): the block's calls end with their
/// answer or a `RemoteError`, each argument is built once across retries, and a calm
/// world gives the right answers.
pub(super) fn services(sim: &mut Sim) -> Result<(), String> {
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let master = sim.add_node();
    let launcher = Rc::new(
        SimLauncher::new(sim.handle(), table())
            .with_connection_timeout(Some(Duration::from_secs(60)))
            .retry_policy(RetryPolicy {
                max_retries: Some(3),
                pause: Duration::from_millis(500),
                pause_max: Duration::from_secs(4),
            }),
    );
    let builds = Rc::new(Cell::new(0u32));
    let counted = builds.clone();
    let square: Rc<RemoteCall<u64>> = Rc::new(RemoteCall::new("square", move || {
        counted.set(counted.get() + 1);
        async { 12u64 }
    }));
    let fail: Rc<RemoteCall<u64>> = Rc::new(RemoteCall::new("fail", || async {
        "on purpose".to_string()
    }));
    let slow: Rc<RemoteCall<u64>> = Rc::new(RemoteCall::new("slow_square", || async { 3u64 }));
    let in_sim = launcher.clone();
    let outcome = sim
        .run_until(&master, move |p| async move {
            let p = &p;
            with_remote_runner(p, &*in_sim, |runner| {
                let (square, fail, slow) = (square.clone(), fail.clone(), slow.clone());
                async move {
                    let answer = runner.run(p, &square).await.inspect_err(probe_kind)?;
                    if answer != 144 {
                        return Ok(Err(format!("square of 12 answered {answer}")));
                    }
                    match runner.run(p, &fail).await {
                        Err(RemoteError {
                            kind: RemoteErrorKind::Exception(_),
                            ..
                        }) => hyperion::reached!("remote_error.exception"),
                        Err(other) => {
                            probe_kind(&other);
                            return Err(other);
                        }
                        Ok(value) => return Ok(Err(format!("a failing call answered {value}"))),
                    }
                    let before = p.now();
                    let task = runner.start(p, &slow).await;
                    match task.wait_timeout(p, Duration::from_secs(1)).await {
                        Err(RemoteError {
                            kind: RemoteErrorKind::Pending,
                            ..
                        }) => {
                            hyperion::reached!("services.call_pending");
                            hyperion::reached!("remote_error.pending");
                            task.cancel(p);
                            if let Err(error) = task.wait(p).await {
                                probe_kind(&error);
                            }
                        }
                        Err(other) => {
                            probe_kind(&other);
                            return Err(other);
                        }
                        // Its start may have waited out a partition while the call
                        // ran: it answers within the 1 s wait, but not sooner than its
                        // 5 s after the start (4 s, with 10% clock drift either way).
                        Ok(9) if p.now() - before >= Duration::from_secs(4) => {
                            hyperion::reached!("services.slow_call_answered_after_a_stalled_start");
                        }
                        Ok(value) => {
                            return Ok(Err(format!(
                                "a 5 s call answered {value} after {:?}",
                                p.now() - before
                            )))
                        }
                    }
                    Ok(Ok(()))
                }
            })
            .await
        })
        .map_err(|err| err.to_string())?;
    // A worker whose service ended in a quiet world got its ShutDown: it did not need
    // the launcher's backstop (its node stopped under it) to end.
    sim.run_for(Duration::from_secs(2));
    let quiet = calm(sim) && sim.buggify_fired().values().all(|fired| *fired == 0);
    if quiet {
        let exits = launcher.exits();
        for index in launcher.launched() {
            if exits.get(&index) != Some(&WorkerExit::ShutDown) {
                return Err(format!(
                    "the worker on node {index} ended by {:?}, not by ShutDown",
                    exits.get(&index)
                ));
            }
        }
    }
    if builds.get() > 1 {
        return Err(format!("the argument was built {} times", builds.get()));
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(wrong)) => return Err(wrong),
        Err(RunnerError::Remote(error)) => {
            sim.sometimes("services.gave_up", true);
            if calm(sim) && sim.buggify_fired().values().all(|fired| *fired == 0) {
                return Err(format!("a calm world, yet the calls failed: {error}"));
            }
        }
        Err(RunnerError::Service(ServiceError::WorkerConnectionTimeout(_))) => {
            if calm(sim) {
                return Err("a calm world, yet no worker connected".to_string());
            }
        }
        Err(RunnerError::Service(other)) => return Err(format!("service failed: {other}")),
    }
    Ok(())
}

/// The closure a stray node runs: sends `master` the hello of a worker of a service
/// that has ended, then says it did (on the same connection, so after the hello).
fn stray_table() -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register("stray_hello", |p: Process, master: ProcessId| async move {
        let (reply, _replies) = p.new_chan::<WorkerMessage>();
        let hello = WorkerHello {
            pid: p.self_pid(),
            service: ServiceId::from_text("an-ended-service"),
            reply,
            build: p.build_id().clone(),
        };
        p.send(master, hello);
        p.send(master, STRAY_HELLO_SENT.to_string());
    });
    table
}

/// What the stray node says once its hello is on its way.
const STRAY_HELLO_SENT: &str = "stray hello sent";

/// Two services at once in one master process: each gets its own worker, whose hello
/// must reach the service that launched it (not be taken by the other's wait); a hello
/// from a worker of a service that has ended, already in the master's mailbox, is
/// dropped, never taken as a service's worker.
pub(super) fn several_services(sim: &mut Sim) -> Result<(), String> {
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let master = sim.add_node();
    let stray = sim.add_node_with(NodeOptions::default().remote_table(stray_table()));
    let stray_id = stray.id();
    let launcher = Rc::new(
        SimLauncher::new(sim.handle(), table())
            .with_connection_timeout(Some(Duration::from_secs(60))),
    );
    let in_sim = launcher.clone();
    let outcome = sim
        .run_until(&master, move |p| async move {
            let p = &p;
            let closure = Closure::new("stray_hello", &p.self_pid()).expect("encodable");
            if p.spawn(stray_id, closure).await.is_ok() {
                // Under faults the stray node may be cut off: wait a while only.
                let said = p
                    .receive_timeout(
                        Duration::from_secs(5),
                        vec![match_if(
                            |text: &String| text == STRAY_HELLO_SENT,
                            |_: String| (),
                        )],
                    )
                    .await;
                sometimes!("several_services.stray_hello_queued", said.is_some());
            }
            let started = p.now();
            // Each block reports how long its worker took to connect.
            let one = with_service(p, &*in_sim, |node, _| async move {
                let waited = p.now() - started;
                p.sleep(Duration::from_secs(2)).await;
                (node, waited)
            });
            let two = with_service(p, &*in_sim, |node, _| async move {
                let waited = p.now() - started;
                p.sleep(Duration::from_secs(2)).await;
                (node, waited)
            });
            futures::future::join(one, two).await
        })
        .map_err(|err| err.to_string())?;
    let quiet = calm(sim) && sim.buggify_fired().values().all(|fired| *fired == 0);
    let first_hello = WorkerConfig::default().attempt_timeout;
    match outcome {
        (Ok((a, _)), Ok((b, _))) if a == b => {
            Err(format!("two services shared the worker node {a}"))
        }
        (Ok((a, _)), _) | (_, Ok((a, _))) if a == stray_id => Err(format!(
            "a service took the stray hello of an ended service: its worker is {a}"
        )),
        (Ok((_, one)), Ok((_, two))) if quiet && one.max(two) >= first_hello => Err(format!(
            "a calm world, yet a worker connected only after {:?}: its first hello was lost",
            one.max(two)
        )),
        (Ok(_), Ok(_)) => Ok(()),
        (a, b) if calm(sim) => Err(format!(
            "a calm world, yet a service failed: {:?} / {:?}",
            a.err(),
            b.err()
        )),
        _ => Ok(()),
    }
}

/// The master's node crashes at a random moment while its service runs calls: the
/// worker, whose master vanished, stops by itself (it does not wait for a `ShutDown`
/// that cannot come), within the liveness bound (plus its handshake, if it was still
/// saying hello).
pub(super) fn master_crash(sim: &mut Sim) -> Result<(), String> {
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let master = sim.add_node_with(NodeOptions {
        no_restart: true,
        ..NodeOptions::default()
    });
    let launcher = Rc::new(
        SimLauncher::new(sim.handle(), table())
            .with_connection_timeout(Some(Duration::from_secs(60))),
    );
    let slow: Rc<RemoteCall<u64>> = Rc::new(RemoteCall::new("slow_square", || async { 3u64 }));
    let in_sim = launcher.clone();
    let handle = sim.handle();
    let outcome = sim.run_until(&master, move |p| async move {
        let p = &p;
        let crash_after = Duration::from_millis(p.random_u64() % 20_000);
        handle.schedule_in(crash_after, crate::faults::Fault::Crash(0));
        with_remote_runner(p, &*in_sim, |runner| {
            let slow = slow.clone();
            async move {
                for _ in 0..4 {
                    runner.run(p, &slow).await?;
                }
                Ok(())
            }
        })
        .await
    });
    if outcome.is_ok() {
        // The service ended before the crash: nothing to check of the crash.
        return Ok(());
    }
    sim.liveness_phase();
    // A worker still saying hello may take its whole handshake to give up (each hello
    // may be slowed by buggify, up to 15 s).
    let config = WorkerConfig::default();
    sim.run_for((config.attempt_timeout + Duration::from_secs(15)) * config.attempts);
    let exits = launcher.exits();
    for index in launcher.launched() {
        let node = sim.node(index);
        if node.is_stopped() {
            continue;
        }
        match exits.get(&index) {
            Some(
                WorkerExit::MasterLost
                | WorkerExit::NoMaster
                | WorkerExit::ShutDown
                | WorkerExit::Refused,
            ) => {}
            None => {
                return Err(format!(
                    "the worker on node {index} still waits for a master that crashed"
                ))
            }
        }
    }
    Ok(())
}

/// The master kills its worker's process while a call runs there: the call fails with
/// `AsyncLinkFailed` (its worker was lost, though the call's own process lives on), the
/// runner retries the block with a new worker, and the retried call answers. Under
/// faults any `RemoteError` may come first; in a quiet world the answer must come, on
/// the second worker.
pub(super) fn worker_killed(sim: &mut Sim) -> Result<(), String> {
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let master = sim.add_node();
    let launcher = Rc::new(
        SimLauncher::new(sim.handle(), table())
            .with_connection_timeout(Some(Duration::from_secs(60)))
            .retry_policy(RetryPolicy {
                max_retries: Some(3),
                pause: Duration::from_millis(500),
                pause_max: Duration::from_secs(4),
            }),
    );
    let slow: Rc<RemoteCall<u64>> = Rc::new(RemoteCall::new("slow_square", || async { 3u64 }));
    let attempts = Rc::new(Cell::new(0u32));
    let first_error: Rc<RefCell<Option<RemoteErrorKind>>> = Rc::default();
    let (counted, noted) = (attempts.clone(), first_error.clone());
    let in_sim = launcher.clone();
    let outcome = sim
        .run_until(&master, move |p| async move {
            let p = &p;
            with_remote_runner(p, &*in_sim, |runner| {
                let (slow, counted, noted) = (slow.clone(), counted.clone(), noted.clone());
                async move {
                    counted.set(counted.get() + 1);
                    let task = runner.start(p, &slow).await;
                    if counted.get() == 1 {
                        p.sleep(Duration::from_millis(1 + p.random_u64() % 3000))
                            .await;
                        p.kill(runner.worker(), "killed by the scenario");
                    }
                    task.wait(p).await.inspect_err(|error| {
                        probe_kind(error);
                        noted.borrow_mut().get_or_insert(error.kind.clone());
                    })
                }
            })
            .await
        })
        .map_err(|err| err.to_string())?;
    let quiet = calm(sim) && sim.buggify_fired().values().all(|fired| *fired == 0);
    if !quiet {
        return Ok(());
    }
    let first = first_error.borrow().clone();
    match (&outcome, first.as_ref(), attempts.get()) {
        (Ok(9), Some(RemoteErrorKind::AsyncLinkFailed(_)), 2) => Ok(()),
        // The 5 s call answered before the kill (killed at up to 3 s, its clock drifting).
        (Ok(9), None, 1) => Ok(()),
        (outcome, first, attempts) => Err(format!(
            "a quiet world: got {outcome:?} after {attempts} attempts, the first error {first:?}; expected 9 on the second worker after AsyncLinkFailed"
        )),
    }
}

/// Two services at once in one master, one of whose launchers starts workers of
/// another build (a binary recompiled while the run went on): that service never runs
/// its block; if it fails by the refusal, the error names both builds; its workers never
/// connect (they end refused, or give up); the other service is untouched (in a calm
/// world it answers).
pub(super) fn mixed_builds(sim: &mut Sim) -> Result<(), String> {
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let master = sim.add_node();
    let same = Rc::new(
        SimLauncher::new(sim.handle(), table())
            .with_connection_timeout(Some(Duration::from_secs(60))),
    );
    let stale_build = BuildId::named("stale0001");
    let stale = Rc::new(
        SimLauncher::new(sim.handle(), table())
            .with_connection_timeout(Some(Duration::from_secs(60)))
            .worker_build(stale_build.clone()),
    );
    let (in_same, in_stale) = (same.clone(), stale.clone());
    let (good, refused) = sim
        .run_until(&master, move |p| async move {
            let p = &p;
            let good = with_service(p, &*in_same, |_, _| async { 42u64 });
            let refused = with_service(p, &*in_stale, |_, _| async { 43u64 });
            futures::future::join(good, refused).await
        })
        .map_err(|err| err.to_string())?;
    match refused {
        Ok(value) => return Err(format!("a worker of another build ran a block ({value})")),
        Err(ServiceError::Launch(err)) => {
            let text = err.to_string();
            sim.sometimes("mixed_builds.refused", true);
            let own = BuildId::fixed().to_string();
            if !text.contains(&stale_build.to_string()) || !text.contains(&own) {
                return Err(format!("a refusal that does not name both builds: {text}"));
            }
        }
        Err(_) => {}
    }
    sim.run_for(Duration::from_secs(2));
    let exits = stale.exits();
    // Refused, or never heard (its hellos lost under faults): never connected.
    let connected = |exit: &WorkerExit| !matches!(exit, WorkerExit::Refused | WorkerExit::NoMaster);
    if let Some((index, exit)) = exits.iter().find(|(_, exit)| connected(exit)) {
        return Err(format!(
            "the stale worker on node {index} ended by {exit:?}"
        ));
    }
    if calm(sim) && sim.buggify_fired().values().all(|fired| *fired == 0) && good != Ok(42) {
        return Err(format!(
            "a calm world, yet the service of the same build got {good:?}"
        ));
    }
    Ok(())
}

//! Evidence that the simulator finds bugs by itself: each test plants a known defect
//! (through the test-only `planted-defects` feature of `hyperion`, or a test switch of
//! the simulator), runs seeds until a checker or a scenario's invariant catches it, and
//! prints how many seeds it took. Each also checks that the catching seed passes
//! without the defect, so the catch is the defect's doing.

use std::time::Duration;

use hyperion::planted::{plant, Defect};
use hyperion::{LocalNode, ProcessId};
use hyperion_sim::{run_checked, scenarios, Fault, Faults, Sim};

/// Seeds a planted defect may take to be caught before the test fails.
const SEEDS_MAX: u64 = 200;

type Scenario = fn(&mut Sim) -> Result<(), String>;

/// Runs `scenario` on seeds 0.. in worlds made by `world`, with `tamper` applied to
/// each, until one fails; returns that seed and why. Panics if none does.
fn first_catch(
    defect: &str,
    world: impl Fn(u64) -> Sim,
    tamper: impl Fn(&mut Sim),
    scenario: &dyn Fn(&mut Sim) -> Result<(), String>,
) -> (u64, String) {
    for seed in 0..SEEDS_MAX {
        let mut sim = world(seed);
        tamper(&mut sim);
        if let Err(why) = run_checked(&mut sim, scenario) {
            println!(
                "{defect}: caught at seed {seed} ({} seeds): {why}",
                seed + 1
            );
            return (seed, why);
        }
    }
    panic!("{defect}: not caught in {SEEDS_MAX} seeds");
}

fn scenario(name: &str) -> Scenario {
    scenarios::find(name).expect("a registered scenario").run
}

/// A watcher on one node monitors and links to a process of another node that ends
/// after a while; the watcher stays alive, waiting for nothing.
fn quiet_watcher(sim: &mut Sim) -> Result<(), String> {
    let a = sim.add_node();
    let b = sim.add_node();
    let target = b.spawn(|p| async move {
        p.sleep(Duration::from_millis(p.random_u64() % 3000)).await;
    });
    a.spawn(move |p| async move {
        p.monitor(target);
        p.expect::<()>().await;
    });
    let local = a.spawn(|p| async move {
        p.sleep(Duration::from_secs(1)).await;
    });
    a.spawn(move |p| async move {
        p.monitor(local);
        p.expect::<()>().await;
    });
    sim.run_for(Duration::from_secs(5));
    Ok(())
}

#[test]
fn a_monitor_that_never_fires_is_caught_by_the_checker_of_silence() {
    let _defect = plant(Defect::MonitorNeverFires);
    let (seed, why) = first_catch("monitor never fires", Sim::new, |_| {}, &quiet_watcher);
    assert!(why.contains("never told of the death"), "{why}");
    drop(_defect);
    assert_eq!(run_checked(&mut Sim::new(seed), &quiet_watcher), Ok(()));
}

#[test]
fn a_monitor_that_fires_twice_is_caught_where_it_is_received() {
    let _defect = plant(Defect::MonitorFiresTwice);
    let monitors = scenario("monitors");
    let (seed, why) = first_catch("monitor fires twice", Sim::new, |_| {}, &monitors);
    assert!(why.contains("twice"), "{why}");
    drop(_defect);
    assert_eq!(run_checked(&mut Sim::new(seed), &monitors), Ok(()));
}

#[test]
fn a_frame_delivered_twice_is_caught_by_the_fifo_checker() {
    let ping_pong = scenario("ping_pong");
    let (seed, why) = first_catch(
        "frame delivered twice",
        Sim::new,
        Sim::duplicate_frames_for_testing,
        &ping_pong,
    );
    assert!(why.contains("out of order or"), "{why}");
    assert_eq!(run_checked(&mut Sim::new(seed), &ping_pong), Ok(()));
}

/// A sender on one node sends plain data to a process of another, every 100 ms,
/// without ever calling `reconnect`, while the world breaks connections.
fn stubborn_sender(sim: &mut Sim) -> Result<(), String> {
    let a = sim.add_node();
    let b = sim.add_node();
    let sink: ProcessId = b.spawn(|p| async move { while p.expect::<u64>().await < u64::MAX {} });
    a.spawn(move |p| async move {
        for n in 0..100u64 {
            p.send(sink, n);
            p.sleep(Duration::from_millis(100)).await;
        }
    });
    sim.schedule(Duration::from_secs(3), Fault::Break(0, 1));
    sim.run_for(Duration::from_secs(12));
    Ok(())
}

#[test]
fn data_after_a_break_without_reconnect_is_caught() {
    let _defect = plant(Defect::DataWithoutReconnect);
    let (seed, why) = first_catch("data without reconnect", Sim::new, |_| {}, &stubborn_sender);
    assert!(why.contains("waits for reconnect"), "{why}");
    drop(_defect);
    assert_eq!(run_checked(&mut Sim::new(seed), &stubborn_sender), Ok(()));
}

/// Two nodes that know each other; one stops (as by SIGSTOP) for 30 s at a random
/// time: only the other's heartbeat can notice.
fn silent_pause(sim: &mut Sim) -> Result<(), String> {
    let a = sim.add_node();
    let b = sim.add_node();
    let b_id = b.id();
    a.spawn(move |p| async move {
        p.monitor_node(b_id);
        p.expect::<()>().await;
    });
    sim.run_for(Duration::from_millis(2000 + sim.seed() % 3000));
    sim.apply(Fault::Pause(1, Duration::from_secs(30)));
    sim.run_for(Duration::from_secs(40));
    Ok(())
}

fn silent_world(seed: u64) -> Sim {
    Sim::with_faults(seed, Faults::calm())
}

#[test]
fn a_heartbeat_timeout_longer_than_configured_is_caught() {
    let _defect = plant(Defect::HeartbeatTimeoutDoubled);
    let (seed, why) = first_catch(
        "heartbeat timeout doubled",
        silent_world,
        |_| {},
        &silent_pause,
    );
    assert!(why.contains("within the heartbeat bound"), "{why}");
    drop(_defect);
    assert_eq!(run_checked(&mut silent_world(seed), &silent_pause), Ok(()));
}

#[test]
fn a_finalizer_skipped_on_kill_is_caught() {
    let _defect = plant(Defect::FinalizerSkippedOnKill);
    let agents = scenario("agents");
    let (seed, why) = first_catch("finalizer skipped on kill", Sim::new, |_| {}, &agents);
    assert!(why.contains("Kill"), "{why}");
    drop(_defect);
    assert_eq!(run_checked(&mut Sim::new(seed), &agents), Ok(()));
}

#[test]
fn a_dropped_world_runs_the_finalizers_of_its_agents() {
    let finalized = std::rc::Rc::new(std::cell::Cell::new(0));
    {
        let mut sim = Sim::new(1);
        let node: LocalNode = sim.add_node();
        let counted = finalized.clone();
        hyperion::mx::mx_agent_with_finalize(&node, "kept".into(), (), vec![], move |_| {
            counted.set(counted.get() + 1)
        })
        .expect("a fresh id");
        sim.run_for(Duration::from_secs(1));
        assert_eq!(finalized.get(), 0);
    }
    assert_eq!(finalized.get(), 1);
}

#[test]
fn a_handshake_that_gives_up_early_is_caught() {
    let _defect = plant(Defect::HandshakeGivesUpEarly);
    let handshake = scenario("handshake");
    let (seed, why) = first_catch("handshake gives up early", Sim::new, |_| {}, &handshake);
    assert!(why.contains("gave up after"), "{why}");
    drop(_defect);
    assert_eq!(run_checked(&mut Sim::new(seed), &handshake), Ok(()));
}

#[test]
fn a_timeout_that_fires_early_is_caught() {
    let _defect = plant(Defect::TimeoutFiresEarly);
    let handshake = scenario("handshake");
    let (seed, why) = first_catch("timeout fires early", Sim::new, |_| {}, &handshake);
    assert!(why.contains("gave up after"), "{why}");
    drop(_defect);
    assert_eq!(run_checked(&mut Sim::new(seed), &handshake), Ok(()));
}

#[test]
fn a_name_kept_after_its_holder_died_is_caught() {
    let _defect = plant(Defect::NameKeptAfterHolderDied);
    let registry = scenario("registry");
    let (seed, why) = first_catch("name not released", Sim::new, |_| {}, &registry);
    assert!(why.contains("still points to the dead"), "{why}");
    drop(_defect);
    assert_eq!(run_checked(&mut Sim::new(seed), &registry), Ok(()));
}

#[test]
fn a_crossed_dial_accepted_by_both_ends_is_caught_by_the_arbitration_checker() {
    let _defect = plant(Defect::CrossedDialAccepted);
    let arbitration = scenario("arbitration");
    let (seed, why) = first_catch("crossed dial accepted", Sim::new, |_| {}, &arbitration);
    assert!(why.contains("disagree"), "{why}");
    drop(_defect);
    assert_eq!(run_checked(&mut Sim::new(seed), &arbitration), Ok(()));
}

#[test]
fn a_shutdown_never_sent_is_caught_by_how_the_worker_ended() {
    let _defect = plant(Defect::ShutDownNotSent);
    let services = scenario("services");
    let (seed, why) = first_catch("ShutDown not sent", Sim::new, |_| {}, &services);
    assert!(why.contains("not by ShutDown"), "{why}");
    drop(_defect);
    assert_eq!(run_checked(&mut Sim::new(seed), &services), Ok(()));
}

/// A process on one node sends its watcher on another node a message, then ends; the
/// watcher monitors it and waits.
fn last_words(sim: &mut Sim) -> Result<(), String> {
    let a = sim.add_node();
    let b = sim.add_node();
    let speaker = b.spawn(|p| async move {
        let watcher: hyperion::ProcessId = p.expect().await;
        p.sleep(Duration::from_millis(p.random_u64() % 50)).await;
        p.send(watcher, 7u64);
    });
    a.spawn(move |p| async move {
        p.send(speaker, p.self_pid());
        p.monitor(speaker);
        p.expect::<()>().await;
    });
    sim.run_for(Duration::from_secs(5));
    Ok(())
}

#[test]
fn a_death_notice_that_overtakes_its_senders_data_is_caught() {
    let _defect = plant(Defect::DeathNoticeOvertakesData);
    let (seed, why) = first_catch("death notice overtakes data", Sim::new, |_| {}, &last_words);
    assert!(why.contains("after being told it died"), "{why}");
    drop(_defect);
    assert_eq!(run_checked(&mut Sim::new(seed), &last_words), Ok(()));
}

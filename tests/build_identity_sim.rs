//! One program per run, in the simulator: a worker of another build is refused with an
//! error naming both builds; builds declared compatible (one protocol version) connect.

use hyperion::remote::{with_service, ServiceError, WorkerExit};
use hyperion::{BuildId, RemoteTable};
use hyperion_sim::{Faults, NodeOptions, Sim, SimLauncher};

#[test]
fn a_worker_of_another_build_is_refused_naming_both_builds() {
    for seed in 0..16 {
        let mut sim = Sim::with_faults(seed, Faults::calm());
        let master = sim.add_node_with(NodeOptions::default().build(BuildId::named("aaaa1111")));
        let launcher = SimLauncher::new(sim.handle(), RemoteTable::new())
            .worker_build(BuildId::named("bbbb2222"));
        let exits = launcher.exits();
        assert!(exits.is_empty());
        let (outcome, exits) = sim
            .run_until(&master, move |p| async move {
                let outcome = with_service(&p, &launcher, |_, _| async {}).await;
                // Let the refused worker read its answer.
                p.sleep(std::time::Duration::from_secs(1)).await;
                (outcome, launcher.exits())
            })
            .unwrap();
        let Err(ServiceError::Launch(err)) = outcome else {
            panic!("seed {seed}: a worker of another build was accepted: {outcome:?}");
        };
        let text = err.to_string();
        assert!(text.contains("aaaa1111"), "seed {seed}: {text}");
        assert!(text.contains("bbbb2222"), "seed {seed}: {text}");
        assert!(
            text.contains("another build of the program: rebuild, or start a new run"),
            "seed {seed}: {text}"
        );
        assert!(
            // The master cancels the refused job too: its node may stop before the
            // worker reads the refusal, but a worker that ended heard it.
            exits.values().all(|exit| *exit == WorkerExit::Refused),
            "seed {seed}: {exits:?}"
        );
    }
}

#[test]
fn builds_of_one_declared_protocol_work_together() {
    for seed in 0..8 {
        let mut sim = Sim::with_faults(seed, Faults::calm());
        let master = sim.add_node_with(
            NodeOptions::default().build(BuildId::named("aaaa1111").with_protocol(7)),
        );
        let launcher = SimLauncher::new(sim.handle(), RemoteTable::new())
            .worker_build(BuildId::named("bbbb2222").with_protocol(7));
        let outcome = sim
            .run_until(&master, move |p| async move {
                with_service(&p, &launcher, |_, _| async { 42 }).await
            })
            .unwrap();
        assert_eq!(outcome, Ok(42), "seed {seed}");
    }
}

/// Builds declared compatible that disagree on the shape of message types of one name:
/// over seeds (calm, then under faults), no message of the old shape is read as a value
/// of the new one; each surfaces as unmatched (another fingerprint) or as a reported
/// decode failure (see the `mixed_shapes` scenario).
#[test]
fn mixed_shapes_never_decode_as_wrong_values() {
    let run = hyperion_sim::scenarios::find("mixed_shapes").unwrap().run;
    for seed in 0..12 {
        let mut calm = Sim::with_faults(seed, Faults::calm());
        run(&mut calm).unwrap_or_else(|err| panic!("calm seed {seed}: {err}"));
        let mut faulty = Sim::new(seed);
        run(&mut faulty).unwrap_or_else(|err| panic!("seed {seed}: {err}"));
    }
}

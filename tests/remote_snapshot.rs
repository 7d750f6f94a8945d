//! Snapshot of the trace of one worker handshake and one retried call under a fixed
//! seed: a change to the handshake, the retry loop or the wire shows up in review.

use std::rc::Rc;
use std::time::Duration;

use hyperion::remote::{with_remote_runner, RemoteCall, RetryPolicy};
use hyperion::{Process, RemoteTable};
use hyperion_sim::{Faults, Sim, SimLauncher};

#[test]
fn a_handshake_and_a_retried_call() {
    let mut table = RemoteTable::new();
    table.register_call("slow_double", |p: Process, x: u64| async move {
        p.sleep(Duration::from_secs(2)).await;
        Ok::<_, String>(2 * x)
    });
    let mut sim = Sim::with_faults(77, Faults::none()).record_trace();
    let master = sim.add_node();
    let launcher = SimLauncher::new(sim.handle(), table)
        .retry_policy(RetryPolicy {
            max_retries: Some(1),
            pause: Duration::from_millis(500),
            pause_max: Duration::from_secs(1),
        })
        .crash_first(1, Duration::from_secs(1));
    let call: Rc<RemoteCall<u64>> = Rc::new(RemoteCall::new("slow_double", || async { 21u64 }));
    let answer = sim
        .run_until(&master, move |p| async move {
            let p = &p;
            with_remote_runner(p, &launcher, |runner| {
                let call = call.clone();
                async move { runner.run(p, &call).await }
            })
            .await
        })
        .unwrap();
    assert_eq!(answer, Ok(42));
    let trace = sim.trace();
    let lines: Vec<String> = trace
        .entries()
        .expect("recording")
        .iter()
        .map(ToString::to_string)
        .collect();
    insta::assert_snapshot!(format!("hash {:016x}\n{}", trace.hash(), lines.join("\n")));
}

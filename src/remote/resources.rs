//! What a remote call, or the worker of a service, needs: CPUs, memory, a time limit,
//! a partition. Most points of a scan are cheap and some need a big node: a call says
//! what it needs ([`RemoteCall::with_resources`](crate::remote::RemoteCall::with_resources)),
//! a service asks its launcher for a worker that has it
//! ([`with_remote_runner_using`](crate::remote::with_remote_runner_using)), and a call
//! is never run on a worker it does not fit.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Resources of a worker, asked by a call or a service. `None` asks nothing of that
/// kind: the launcher's default. A worker started without asking counts as one CPU and
/// nothing known of the rest.
///
/// ```
/// use std::time::Duration;
/// use hyperion::remote::Resources;
/// let big = Resources::default().cpus(8).memory_mb(64_000).partition("bigmem");
/// assert!(Resources::default().cpus(2).fits_within(&big));
/// assert!(!Resources::default().cpus(2).fits_within(&Resources::default()));
/// assert!(Resources::default().fits_within(&Resources::default()));
/// assert_eq!(big.to_string(), "8 CPUs, 64000 MB, partition bigmem");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// CPUs (Slurm's `--cpus-per-task`; the allocation pool waits for this many).
    pub cpus: Option<u32>,
    /// Memory in megabytes (Slurm's `--mem`).
    pub memory_mb: Option<u64>,
    /// Wall-clock limit (Slurm's `--time`, rounded up to whole minutes).
    pub time_limit: Option<Duration>,
    /// Slurm partition (`--partition`).
    pub partition: Option<String>,
}

impl Resources {
    /// Asks for `cpus` CPUs.
    pub fn cpus(mut self, cpus: u32) -> Resources {
        self.cpus = Some(cpus);
        self
    }

    /// Asks for `memory_mb` megabytes of memory.
    pub fn memory_mb(mut self, memory_mb: u64) -> Resources {
        self.memory_mb = Some(memory_mb);
        self
    }

    /// Asks for a wall-clock limit of at least `limit`.
    pub fn time_limit(mut self, limit: Duration) -> Resources {
        self.time_limit = Some(limit);
        self
    }

    /// Asks for a partition.
    pub fn partition(mut self, partition: &str) -> Resources {
        self.partition = Some(partition.to_string());
        self
    }

    /// Whether nothing is asked.
    pub fn is_default(&self) -> bool {
        *self == Resources::default()
    }

    /// Whether a call asking `self` may run on a worker started with `worker`: each
    /// asked amount at most the worker's, the same partition. A worker started without
    /// asking counts as one CPU and nothing known of memory, time or partition.
    pub fn fits_within(&self, worker: &Resources) -> bool {
        let cpus = self
            .cpus
            .is_none_or(|cpus| cpus <= worker.cpus.unwrap_or(1));
        let memory = self
            .memory_mb
            .is_none_or(|mb| worker.memory_mb.is_some_and(|has| mb <= has));
        let time = self
            .time_limit
            .is_none_or(|limit| worker.time_limit.is_some_and(|has| limit <= has));
        let partition = self
            .partition
            .as_ref()
            .is_none_or(|name| worker.partition.as_ref() == Some(name));
        cpus && memory && time && partition
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(cpus) = self.cpus {
            parts.push(format!("{cpus} CPU{}", if cpus == 1 { "" } else { "s" }));
        }
        if let Some(mb) = self.memory_mb {
            parts.push(format!("{mb} MB"));
        }
        if let Some(limit) = self.time_limit {
            parts.push(format!("{} s", limit.as_secs()));
        }
        if let Some(partition) = &self.partition {
            parts.push(format!("partition {partition}"));
        }
        if parts.is_empty() {
            return f.write_str("the launcher's default resources");
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn resources() -> impl Strategy<Value = Resources> {
        (
            proptest::option::of(1u32..4),
            proptest::option::of(0u64..4),
            proptest::option::of((0u64..4).prop_map(Duration::from_secs)),
            proptest::option::of(prop_oneof![Just("a".to_string()), Just("b".to_string())]),
        )
            .prop_map(|(cpus, memory_mb, time_limit, partition)| Resources {
                cpus,
                memory_mb,
                time_limit,
                partition,
            })
    }

    proptest! {
        // A worker started with what a call asks always fits that call, and so does
        // every call asking less of each.
        #[test]
        fn a_call_fits_a_worker_started_with_what_it_asks(asked in resources()) {
            prop_assert!(asked.fits_within(&asked));
            prop_assert!(Resources::default().fits_within(&asked));
        }

        // Fitting is transitive: a call that fits a worker that fits a bigger one fits
        // the bigger one.
        #[test]
        fn fitting_is_transitive(a in resources(), b in resources(), c in resources()) {
            if a.fits_within(&b) && b.fits_within(&c) {
                prop_assert!(a.fits_within(&c));
            }
        }
    }

    #[test]
    fn a_call_needing_more_than_the_worker_has_does_not_fit() {
        let worker = Resources::default().cpus(1).memory_mb(1000);
        assert!(!Resources::default().cpus(2).fits_within(&worker));
        assert!(!Resources::default().memory_mb(2000).fits_within(&worker));
        assert!(!Resources::default().partition("gpu").fits_within(&worker));
        assert!(!Resources::default()
            .time_limit(Duration::from_secs(1))
            .fits_within(&worker));
        assert!(Resources::default()
            .cpus(1)
            .fits_within(&Resources::default()));
    }
}

//! Fault plans as explicit lists: what a run injected at random (faults and buggify
//! firings), written down so that it can be replayed, shrunk, and kept in a file.
//!
//! A plan names faults (`at 2.5 s, partition node 0 from node 1 for 3 s`), not draws of
//! a generator, so a replay keeps injecting the same faults after unrelated code
//! changes. The world's own generator still chooses the interleavings and latencies
//! from the seed, which is why a plan carries its seed.
//!
//! The text form, one step a line (times and durations in nanoseconds of virtual time):
//!
//! ```text
//! # hyperion-sim plan
//! scenario services
//! seed 42
//! fault 1250000000 break 0 1
//! fault 2000000000 partition 0 1 both 3000000000
//! fault 4000000000 crash 2 reset restart 500000000
//! fault 5000000000 crash 3 silent
//! fault 6000000000 slow 1 2000000 4000000000
//! fault 7000000000 pause 2 5000000000
//! fault 0 drift 1 -150000
//! buggify 7 src/remote/call.rs:120:12
//! ```

use std::fmt;
use std::time::Duration;

/// A fault the world injected at random, with every decision the random injection made
/// about it (so that a replay needs no draw of any generator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlannedFault {
    /// Break the connection between two nodes (by index), if there is one.
    Break(usize, usize),
    /// Block traffic from one node to another (and back, if `both_ways`), then lift
    /// every partition after `heal_after`.
    Partition {
        /// The sending side.
        from: usize,
        /// The receiving side.
        to: usize,
        /// Block the other direction too.
        both_ways: bool,
        /// How long until every partition heals.
        heal_after: Duration,
    },
    /// Crash a node; `reset`: its peers' connections are reset at once (a killed
    /// process) rather than going silent; restart it as a new incarnation after
    /// `restart_after`, if any.
    Crash {
        /// The node.
        index: usize,
        /// Whether peers see a reset rather than silence.
        reset: bool,
        /// When it comes back.
        restart_after: Option<Duration>,
    },
    /// Make a node spend `cost` of virtual time per task (a loaded host) for `lasting`,
    /// then run at its former pace.
    Slow {
        /// The node.
        index: usize,
        /// Virtual time per task.
        cost: Duration,
        /// How long it stays slow.
        lasting: Duration,
    },
    /// Stop a node for `duration`, as SIGSTOP does: a silent node, whose connections
    /// stay open and whose peers must notice by heartbeat alone.
    Pause {
        /// The node.
        index: usize,
        /// How long it stays stopped.
        duration: Duration,
    },
    /// A node's clock runs `ppm` parts per million fast (slow, if negative) from its
    /// start. A clock's rate is set when its node is made, so this step applies to a
    /// node added after the plan is followed; its time is not used (write 0).
    Drift {
        /// The node.
        index: usize,
        /// Parts per million, either way (at most ±500 000).
        ppm: i32,
    },
}

/// One injected fault and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanFault {
    /// Virtual time of the injection.
    pub at: Duration,
    /// What was injected.
    pub fault: PlannedFault,
}

/// A buggify firing: the `call`-th evaluation (from 0) of the site `site`
/// (`file:line:column`) fired.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlanBuggify {
    /// The site, as `file:line:column`.
    pub site: String,
    /// Which evaluation of the site fired, from 0.
    pub call: u64,
}

/// What a run injected: the seed, the faults and the buggify firings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The scenario it belongs to (empty when unknown).
    pub scenario: String,
    /// The world's seed (interleavings, latencies, clocks).
    pub seed: u64,
    /// Faults, in the order injected.
    pub faults: Vec<PlanFault>,
    /// Buggify firings.
    pub buggify: Vec<PlanBuggify>,
}

impl Plan {
    /// Faults plus buggify firings: what shrinking makes smaller.
    pub fn len(&self) -> usize {
        self.faults.len() + self.buggify.len()
    }

    /// Whether the plan injects nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads a plan written by [`Display`](fmt::Display).
    ///
    /// ```
    /// use hyperion_sim::Plan;
    /// let plan: Plan = "seed 3\nfault 1000 break 0 1\n".parse().unwrap();
    /// assert_eq!(plan.len(), 1);
    /// assert_eq!(plan.to_string().parse::<Plan>().unwrap(), plan);
    /// assert!("seed x".parse::<Plan>().is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Plan, PlanError> {
        let mut plan = Plan::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |why: &str| PlanError {
                line: number + 1,
                why: why.to_string(),
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["scenario", name] => plan.scenario = (*name).to_string(),
                ["seed", seed] => plan.seed = seed.parse().map_err(|_| error("bad seed"))?,
                ["fault", at, rest @ ..] => {
                    let at = nanos(at).ok_or_else(|| error("bad time"))?;
                    let fault = parse_fault(rest).ok_or_else(|| error("bad fault"))?;
                    plan.faults.push(PlanFault { at, fault });
                }
                ["buggify", call, site] => plan.buggify.push(PlanBuggify {
                    site: (*site).to_string(),
                    call: call.parse().map_err(|_| error("bad call number"))?,
                }),
                _ => return Err(error("unknown step")),
            }
        }
        Ok(plan)
    }
}

impl std::str::FromStr for Plan {
    type Err = PlanError;

    fn from_str(text: &str) -> Result<Plan, PlanError> {
        Plan::parse(text)
    }
}

/// A plan file that does not parse: which line, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub why: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plan line {}: {}", self.line, self.why)
    }
}

impl std::error::Error for PlanError {}

fn nanos(text: &str) -> Option<Duration> {
    text.parse::<u64>().ok().map(Duration::from_nanos)
}

fn parse_fault(words: &[&str]) -> Option<PlannedFault> {
    let index = |text: &str| text.parse::<usize>().ok();
    Some(match words {
        ["break", a, b] => PlannedFault::Break(index(a)?, index(b)?),
        ["partition", from, to, ways, heal_after] => PlannedFault::Partition {
            from: index(from)?,
            to: index(to)?,
            both_ways: match *ways {
                "both" => true,
                "one-way" => false,
                _ => return None,
            },
            heal_after: nanos(heal_after)?,
        },
        ["crash", victim, how, rest @ ..] => PlannedFault::Crash {
            index: index(victim)?,
            reset: match *how {
                "reset" => true,
                "silent" => false,
                _ => return None,
            },
            restart_after: match rest {
                [] => None,
                ["restart", after] => Some(nanos(after)?),
                _ => return None,
            },
        },
        ["slow", victim, cost, lasting] => PlannedFault::Slow {
            index: index(victim)?,
            cost: nanos(cost)?,
            lasting: nanos(lasting)?,
        },
        ["pause", victim, duration] => PlannedFault::Pause {
            index: index(victim)?,
            duration: nanos(duration)?,
        },
        ["drift", victim, ppm] => PlannedFault::Drift {
            index: index(victim)?,
            ppm: ppm.parse().ok().filter(|ppm: &i32| ppm.abs() <= 500_000)?,
        },
        _ => return None,
    })
}

impl fmt::Display for PlannedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlannedFault::Break(a, b) => write!(f, "break {a} {b}"),
            PlannedFault::Partition {
                from,
                to,
                both_ways,
                heal_after,
            } => {
                let ways = if *both_ways { "both" } else { "one-way" };
                write!(f, "partition {from} {to} {ways} {}", heal_after.as_nanos())
            }
            PlannedFault::Crash {
                index,
                reset,
                restart_after,
            } => {
                let how = if *reset { "reset" } else { "silent" };
                write!(f, "crash {index} {how}")?;
                if let Some(after) = restart_after {
                    write!(f, " restart {}", after.as_nanos())?;
                }
                Ok(())
            }
            PlannedFault::Slow {
                index,
                cost,
                lasting,
            } => write!(f, "slow {index} {} {}", cost.as_nanos(), lasting.as_nanos()),
            PlannedFault::Pause { index, duration } => {
                write!(f, "pause {index} {}", duration.as_nanos())
            }
            PlannedFault::Drift { index, ppm } => write!(f, "drift {index} {ppm}"),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "# hyperion-sim plan: faults and buggify firings to inject (times in ns of virtual time)"
        )?;
        if !self.scenario.is_empty() {
            writeln!(f, "scenario {}", self.scenario)?;
        }
        writeln!(f, "seed {}", self.seed)?;
        for step in &self.faults {
            writeln!(f, "fault {} {}", step.at.as_nanos(), step.fault)?;
        }
        for firing in &self.buggify {
            writeln!(f, "buggify {} {}", firing.call, firing.site)?;
        }
        Ok(())
    }
}

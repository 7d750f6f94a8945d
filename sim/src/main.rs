//! The seed explorer.
//!
//! ```text
//! cargo run -p hyperion-sim --release -- list
//! cargo run -p hyperion-sim --release -- explore [--scenario NAME] [--seeds N] [--start S]
//! cargo run -p hyperion-sim --release -- replay --scenario NAME --seed S
//! cargo run -p hyperion-sim --release -- replay --plan FILE [--scenario NAME]
//! cargo run -p hyperion-sim --release -- shrink --scenario NAME --seed S [--out FILE]
//! ```

use hyperion_sim::{scenarios, Plan};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// hyperion's seed explorer: runs the simulator's scenarios over many seeds, and
/// replays one seed with its trace.
#[derive(Parser, Debug)]
#[command(name = "hyperion-sim")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the scenarios.
    List,
    /// Run scenarios over a range of seeds; print each failing seed with the command
    /// that replays it.
    Explore {
        /// Only this scenario (default: every one).
        #[arg(long)]
        scenario: Option<String>,
        /// Seeds per scenario (at least 1).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
    },
    /// Run one seed of one scenario, or one plan (a seed and the faults to inject, as
    /// `shrink` and `explore` write them), and print its trace.
    Replay {
        /// The scenario (see `list`); a plan file may name it instead.
        #[arg(long, required_unless_present = "plan")]
        scenario: Option<String>,
        /// The seed.
        #[arg(long, required_unless_present = "plan", conflicts_with = "plan")]
        seed: Option<u64>,
        /// A plan file: its seed, faults and buggify firings replace random ones.
        #[arg(long)]
        plan: Option<PathBuf>,
    },
    /// Shrink a failing seed to a small plan of faults that still fails, write it to a
    /// file, and print the command that replays it.
    Shrink {
        /// The scenario (see `list`).
        #[arg(long)]
        scenario: String,
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// Where to write the plan (default: `hyperion-sim-plans/NAME-SEED.plan`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// What `explore` runs.
struct Options {
    scenario: Option<String>,
    seeds: u64,
    start: u64,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::List => {
            for scenario in scenarios::all() {
                println!("{:<12} {}", scenario.name, scenario.about);
            }
            ExitCode::SUCCESS
        }
        Command::Explore {
            scenario,
            seeds,
            start,
        } => {
            // The range must end at the last seed at most: never wrap around.
            if start.checked_add(seeds - 1).is_none() {
                Cli::command()
                    .error(
                        clap::error::ErrorKind::ValueValidation,
                        format!(
                            "--start {start} --seeds {seeds} goes past the last seed ({}); at most {} seeds start there",
                            u64::MAX,
                            u64::MAX - start + 1
                        ),
                    )
                    .exit();
            }
            explore(&Options {
                scenario,
                seeds,
                start,
            })
        }
        Command::Replay {
            scenario,
            seed,
            plan,
        } => replay(scenario, seed, plan),
        Command::Shrink {
            scenario,
            seed,
            out,
        } => shrink(&scenario, seed, out),
    }
}

fn explore(options: &Options) -> ExitCode {
    let chosen: Vec<_> = match &options.scenario {
        Some(name) => match scenarios::find(name) {
            Some(scenario) => vec![scenario],
            None => {
                eprintln!("no scenario {name:?}; try `list`");
                return ExitCode::from(2);
            }
        },
        None => scenarios::all().iter().collect(),
    };
    // Panics are part of the scenarios (agents that panic, buggified closures) and the
    // default hook would print each one; a panic that fails a seed is reported with its
    // message by the runner, beside the command that replays it.
    std::panic::set_hook(Box::new(|_| {}));
    // Likewise the master's terminal notices (a worker of another build refused): a
    // scenario's outcome says what matters.
    hyperion::cluster::print_notices_with(|_| {});
    if hyperion_sim::coverage::explore(&chosen, options.start, options.seeds) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn replay(name: Option<String>, seed: Option<u64>, plan_file: Option<PathBuf>) -> ExitCode {
    let plan = match &plan_file {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|err| err.to_string())
            .and_then(|text| Plan::parse(&text).map_err(|err| err.to_string()))
        {
            Ok(plan) => Some(plan),
            Err(err) => {
                eprintln!("cannot read the plan {}: {err}", path.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let name = name
        .or_else(|| plan.as_ref().map(|plan| plan.scenario.clone()))
        .unwrap_or_default();
    let Some(scenario) = scenarios::find(&name) else {
        eprintln!(
            "no scenario {name:?}; try `list` (a plan names its scenario, or give --scenario)"
        );
        return ExitCode::from(2);
    };
    let mut sim = match (&plan, seed) {
        (Some(plan), _) => scenario.world(plan.seed).follow_plan(plan),
        (None, Some(seed)) => scenario.world(seed),
        (None, None) => {
            eprintln!("replay needs --seed or --plan");
            return ExitCode::from(2);
        }
    }
    .record_trace();
    let result = hyperion_sim::run_checked(&mut sim, &scenario.run);
    if let Some(entries) = sim.trace().entries() {
        for entry in entries {
            println!("{entry}");
        }
    }
    println!(
        "trace hash {:016x}, {} events",
        sim.trace().hash(),
        sim.trace().len()
    );
    for violation in sim.violations() {
        println!("VIOLATION {violation}");
    }
    match result {
        Ok(()) if sim.violations().is_empty() => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
        Err(why) => {
            println!("FAIL: {why}");
            ExitCode::FAILURE
        }
    }
}

fn shrink(name: &str, seed: u64, out: Option<PathBuf>) -> ExitCode {
    let Some(scenario) = scenarios::find(name) else {
        eprintln!("no scenario {name:?}; try `list`");
        return ExitCode::from(2);
    };
    std::panic::set_hook(Box::new(|_| {}));
    match hyperion_sim::coverage::shrink_and_write(scenario, seed, out.as_deref()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name} seed {seed}: {err}");
            ExitCode::FAILURE
        }
    }
}

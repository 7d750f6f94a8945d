//! The seed explorer.
//!
//! ```text
//! cargo run -p hyperion-sim --release -- list
//! cargo run -p hyperion-sim --release -- explore [--scenario NAME] [--seeds N] [--start S]
//! cargo run -p hyperion-sim --release -- replay --scenario NAME --seed S
//! ```

use hyperion_sim::scenarios;
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
    /// Run one seed of one scenario and print its trace.
    Replay {
        /// The scenario (see `list`).
        #[arg(long)]
        scenario: String,
        /// The seed.
        #[arg(long)]
        seed: u64,
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
        Command::Replay { scenario, seed } => replay(&scenario, seed),
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
    if hyperion_sim::coverage::explore(&chosen, options.start, options.seeds) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn replay(name: &str, seed: u64) -> ExitCode {
    let Some(scenario) = scenarios::find(name) else {
        eprintln!("no scenario {name:?}; try `list`");
        return ExitCode::from(2);
    };
    let mut sim = scenario.world(seed).record_trace();
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

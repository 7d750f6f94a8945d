//! The seed explorer.
//!
//! ```text
//! cargo run -p hyperion-sim --release -- list
//! cargo run -p hyperion-sim --release -- explore [--scenario NAME] [--seeds N] [--start S]
//! cargo run -p hyperion-sim --release -- replay --scenario NAME --seed S
//! ```

use hyperion_sim::scenarios;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: hyperion-sim list\n       \
         hyperion-sim explore [--scenario NAME] [--seeds N] [--start S]\n       \
         hyperion-sim replay --scenario NAME --seed S"
    );
    ExitCode::from(2)
}

struct Options {
    scenario: Option<String>,
    seeds: u64,
    start: u64,
    seed: Option<u64>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        scenario: None,
        seeds: 1000,
        start: 0,
        seed: None,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--scenario" => options.scenario = Some(value.clone()),
            "--seeds" => options.seeds = number()?,
            "--start" => options.start = number()?,
            "--seed" => options.seed = Some(number()?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        return usage();
    };
    let options = match parse(&args[1..]) {
        Ok(options) => options,
        Err(why) => {
            eprintln!("{why}");
            return usage();
        }
    };
    match command.as_str() {
        "list" => {
            for scenario in scenarios::all() {
                println!("{:<12} {}", scenario.name, scenario.about);
            }
            ExitCode::SUCCESS
        }
        "explore" => explore(&options),
        "replay" => replay(&options),
        _ => usage(),
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
    if hyperion_sim::coverage::explore(&chosen, options.start, options.seeds) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn replay(options: &Options) -> ExitCode {
    let (Some(name), Some(seed)) = (&options.scenario, options.seed) else {
        eprintln!("replay needs --scenario and --seed");
        return usage();
    };
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

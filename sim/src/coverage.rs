//! The explorer's campaign: runs scenarios over many seeds and reports, per scenario,
//! failures (with the command that replays each), speed (seeds per second, simulated
//! time per wall second), and coverage: how many seeds reached each probe, which probes
//! no seed reached (gaps), and how many seeds fired buggify points.
//!
//! A campaign fails when a scenario fails on a seed (unless the scenario is marked with
//! a known defect) or when a probe a scenario marks required is never reached in a run
//! of at least [`REQUIRED_PROBES_MIN_SEEDS`] seeds.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::runner::run_checked;
use crate::scenarios::Scenario;
use crate::shrink::shrink_seed;

/// Seeds a campaign needs before a required probe that no seed reached fails it
/// (fewer seeds only report the gap).
pub const REQUIRED_PROBES_MIN_SEEDS: u64 = 100;

/// What one scenario's campaign found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that failed, with why.
    pub failures: Vec<(u64, String)>,
    /// Wall-clock time spent.
    pub wall: Duration,
    /// Virtual time simulated, summed over seeds.
    pub simulated: Duration,
    /// For each probe evaluated by some seed: how many seeds reached it.
    pub probes: BTreeMap<&'static str, u64>,
    /// Seeds in which at least one buggify point fired.
    pub buggified_seeds: u64,
    /// Required probes that no seed reached.
    pub missing_required: Vec<&'static str>,
}

/// Runs `scenario` for seeds `start..start + seeds` (each in [`Scenario::world`]).
pub fn campaign(scenario: &Scenario, start: u64, seeds: u64) -> Report {
    let started = Instant::now(); // real-world only: the explorer times itself
    let mut report = Report {
        seeds,
        ..Report::default()
    };
    // `start + (seeds - 1)` is checked by the caller; `start + seeds` may not fit.
    for seed in (0..seeds).map(|offset| start + offset) {
        let mut sim = scenario.world(seed);
        if let Err(why) = run_checked(&mut sim, &scenario.run) {
            report.failures.push((seed, why));
        }
        report.simulated += sim.now();
        for (name, count) in sim.probes() {
            let reached = report.probes.entry(name).or_default();
            *reached += u64::from(count.reached > 0);
        }
        if sim.buggify_fired().values().any(|fired| *fired > 0) {
            report.buggified_seeds += 1;
        }
    }
    report.wall = started.elapsed();
    report.missing_required = scenario
        .probes
        .iter()
        .filter(|probe| probe.required)
        .filter(|probe| report.probes.get(probe.name).copied().unwrap_or(0) == 0)
        .map(|probe| probe.name)
        .collect();
    report
}

/// Failing seeds per scenario that a campaign shrinks to a plan (each shrink runs the
/// scenario up to [`SHRINK_RUNS_MAX`](crate::shrink::SHRINK_RUNS_MAX) times).
pub const SHRUNK_PER_SCENARIO_MAX: usize = 3;

/// Where the explorer writes shrunk plans, under the current directory.
pub const PLANS_DIRECTORY: &str = "hyperion-sim-plans";

/// Runs every scenario of `chosen` and prints the reports; whether the campaign passed.
/// The first failing seeds of a scenario (not marked with a known defect) are shrunk to
/// plans, written under [`PLANS_DIRECTORY`], each with the command that replays it.
pub fn explore(chosen: &[&Scenario], start: u64, seeds: u64) -> bool {
    let mut passed = true;
    for scenario in chosen {
        let report = campaign(scenario, start, seeds);
        passed &= print_report(scenario, &report);
        if scenario.known_defect.is_some() {
            continue;
        }
        for (seed, _) in report.failures.iter().take(SHRUNK_PER_SCENARIO_MAX) {
            if let Err(err) = shrink_and_write(scenario, *seed, None) {
                println!("  seed {seed} not shrunk: {err}");
            }
        }
    }
    passed
}

/// Shrinks the failing `seed` of `scenario` to a plan, writes it to `out` (default
/// `PLANS_DIRECTORY/NAME-SEED.plan`), and prints what it found and the command that
/// replays it; the file written.
pub fn shrink_and_write(
    scenario: &Scenario,
    seed: u64,
    out: Option<&std::path::Path>,
) -> Result<std::path::PathBuf, String> {
    let shrunk = shrink_seed(scenario, seed).map_err(|err| err.to_string())?;
    let path = match out {
        Some(path) => path.to_path_buf(),
        None => {
            std::path::Path::new(PLANS_DIRECTORY).join(format!("{}-{seed}.plan", scenario.name))
        }
    };
    if let Some(directory) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(directory)
            .map_err(|err| format!("cannot create {}: {err}", directory.display()))?;
    }
    std::fs::write(&path, shrunk.minimal.to_string())
        .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    println!(
        "  shrunk {} seed {seed}: {} injected steps -> {} in {} runs: {}\n  replay: cargo run -p hyperion-sim --release -- replay --scenario {} --plan {}",
        scenario.name,
        shrunk.original.len(),
        shrunk.minimal.len(),
        shrunk.runs,
        shrunk.why.lines().next().unwrap_or_default(),
        scenario.name,
        path.display()
    );
    Ok(path)
}

/// Prints one scenario's report; whether it passed.
pub fn print_report(scenario: &Scenario, report: &Report) -> bool {
    let mut passed = true;
    let known = scenario.known_defect;
    for (seed, why) in &report.failures {
        let label = if known.is_some() { "KNOWN" } else { "FAIL" };
        println!(
            "{label} {} seed {seed}: {why}\n  replay: cargo run -p hyperion-sim --release -- replay --scenario {} --seed {seed}",
            scenario.name, scenario.name
        );
    }
    let wall = report.wall.as_secs_f64().max(1e-9);
    println!(
        "{}: {} seeds in {wall:.2} s ({:.0} seeds/s, {:.0} s simulated per wall second), {} failed",
        scenario.name,
        report.seeds,
        report.seeds as f64 / wall,
        report.simulated.as_secs_f64() / wall,
        report.failures.len()
    );
    if let Some(defect) = known {
        println!("  known defect (failures do not fail the run): {defect}");
    } else if !report.failures.is_empty() {
        passed = false;
    }
    for probe in scenario.probes {
        let reached = report.probes.get(probe.name).copied().unwrap_or(0);
        let kind = if probe.required {
            "required"
        } else {
            "optional"
        };
        let gap = if reached == 0 { "  GAP" } else { "" };
        println!(
            "  probe {:<48} {kind:<8} {reached:>6}/{} seeds{gap}",
            probe.name, report.seeds
        );
    }
    for (name, reached) in &report.probes {
        if !scenario.probes.iter().any(|probe| probe.name == *name) {
            println!(
                "  probe {name:<48} seen     {reached:>6}/{} seeds",
                report.seeds
            );
        }
    }
    let declared = scenario.probes.len();
    let covered = scenario
        .probes
        .iter()
        .filter(|probe| report.probes.get(probe.name).copied().unwrap_or(0) > 0)
        .count();
    println!(
        "  coverage: {covered}/{declared} declared probes reached; buggify fired in {}/{} seeds",
        report.buggified_seeds, report.seeds
    );
    if !report.missing_required.is_empty() {
        if report.seeds >= REQUIRED_PROBES_MIN_SEEDS {
            println!(
                "  FAIL required probes never reached: {}",
                report.missing_required.join(", ")
            );
            passed = false;
        } else {
            println!(
                "  required probes not reached in {} seeds (checked from {REQUIRED_PROBES_MIN_SEEDS}): {}",
                report.seeds,
                report.missing_required.join(", ")
            );
        }
    }
    passed
}

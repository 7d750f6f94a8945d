//! The main job with an adaptive pool of local workers (`--min-workers A --max-workers
//! B`): every point is computed and stored, the pool never runs more than B workers, a
//! resumed run takes everything from the store, and bad bounds are a clear error.

mod common;

use common::{scan_binary, temp_dir};

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

const TASKS: usize = 16;
const MAX_WORKERS: u64 = 3;

fn scan(dir: &Path, extra: &[&str]) -> Output {
    Command::new(scan_binary())
        .args(["--tasks", &TASKS.to_string(), "--pause-ms", "200"])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("the scan example was built by cargo test")
}

fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The number before `word` in `text` ("12 from the store" → 12).
fn number_before(text: &str, word: &str) -> u64 {
    let at = text
        .find(word)
        .unwrap_or_else(|| panic!("no {word:?} in {text}"));
    let digits: String = text[..at]
        .trim_end()
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

/// The line the scan prints about its adaptive pool.
fn pool_line(text: &str) -> &str {
    text.lines()
        .find(|line| line.starts_with("scan: adaptive pool:"))
        .unwrap_or_else(|| panic!("no pool report in {text}"))
}

/// Each point of a results file, with how many times it appears; every value right.
fn points(results: &str) -> BTreeMap<String, u32> {
    let mut reader = csv::Reader::from_reader(results.as_bytes());
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        let (integral, exact): (f64, f64) =
            (record[1].parse().unwrap(), record[2].parse().unwrap());
        assert!((integral - exact).abs() < 1e-9, "a wrong value: {record:?}");
        *seen.entry(record[0].to_string()).or_default() += 1;
    }
    seen
}

#[test]
fn an_adaptive_scan_computes_every_point_and_never_exceeds_its_maximum() {
    let dir = temp_dir("scan-pool");
    let max = MAX_WORKERS.to_string();
    let output = scan(dir.path(), &["--min-workers", "1", "--max-workers", &max]);
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(&format!("{TASKS} of {TASKS} integrals")),
        "{text}"
    );
    let pool = pool_line(&text);
    let peak = number_before(pool, "workers at once");
    assert!(
        (1..=MAX_WORKERS).contains(&peak),
        "the pool ran {peak} workers at once: {pool}"
    );
    let run = dir.path().join("hyperion-runs/run-0001");
    let workers_logged = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("worker-"))
        .count() as u64;
    assert_eq!(
        workers_logged,
        number_before(pool, "started"),
        "each worker the pool started has its log: {pool}"
    );
    let results = std::fs::read_to_string(run.join("results.csv")).unwrap();
    let seen = points(&results);
    assert_eq!(seen.len(), TASKS, "every point present: {results}");
    assert!(seen.values().all(|n| *n == 1), "each point once: {seen:?}");

    // Resumed with the pool: everything comes from the store, no worker starts.
    let resumed = scan(dir.path(), &["--resume", "--max-workers", "2"]);
    let text = output_text(&resumed);
    assert!(resumed.status.success(), "{text}");
    assert_eq!(
        number_before(&text, "from the store"),
        TASKS as u64,
        "{text}"
    );
    assert_eq!(number_before(&text, "computed"), 0, "{text}");
    assert_eq!(number_before(pool_line(&text), "started"), 0, "{text}");
}

#[test]
fn a_minimum_above_the_maximum_is_a_clear_error() {
    let dir = temp_dir("scan-pool-bounds");
    let output = scan(dir.path(), &["--min-workers", "4", "--max-workers", "3"]);
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("--min-workers 4 exceeds --max-workers 3"),
        "{text}"
    );
    let both = scan(dir.path(), &["--workers", "2", "--max-workers", "3"]);
    let text = output_text(&both);
    assert_eq!(both.status.code(), Some(2), "{text}");
    assert!(text.contains("cannot be used with"), "{text}");
}

//! Kill -9 of the main job's master, then `--resume`: every point is present once, with
//! the right value, and only the points missing from the store are computed again.

mod common;

use common::scan_binary;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

const TASKS: usize = 40;
/// Every task pauses this long on its worker, so that the kill lands mid-scan.
const PAUSE_MS: &str = "200";

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hyperion-scan-resume-{}-{test}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Rows committed to the store at `db` (0 while it does not exist yet).
fn rows(db: &Path) -> u64 {
    let Ok(connection) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    connection
        .query_row("SELECT count(*) FROM results", [], |row| {
            row.get::<_, i64>(0)
        })
        .map(|n| n as u64)
        .unwrap_or(0)
}

fn scan(dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(scan_binary());
    command
        .args([
            "--workers",
            "2",
            "--tasks",
            &TASKS.to_string(),
            "--pause-ms",
            PAUSE_MS,
        ])
        .args(extra)
        .current_dir(dir);
    command
}

fn output_text(output: &std::process::Output) -> String {
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

#[test]
fn a_killed_scan_resumes_computing_only_the_missing_points() {
    let dir = scratch("kill");
    let first_db = dir.join("hyperion-runs/run-0001/results.db");
    let mut master = scan(&dir, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the scan example was built by cargo test");
    // Wait for some results to be committed, then kill the master without warning.
    let deadline = Instant::now() + Duration::from_secs(120);
    while rows(&first_db) < 6 {
        assert!(
            Instant::now() < deadline,
            "no results were committed in time"
        );
        assert!(
            master.try_wait().unwrap().is_none(),
            "the scan ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(20)); // a poll interval, not a wait for the condition
    }
    // A second master may not resume a run whose master is still running (run-0002 is
    // made, then refused).
    let refused = scan(&dir, &["--resume", "run-0001"]).output().unwrap();
    let refusal = output_text(&refused);
    assert!(!refused.status.success(), "{refusal}");
    assert!(refusal.contains("in use by another master"), "{refusal}");
    assert!(refusal.contains("run-0001/results.db"), "{refusal}");
    master.kill().unwrap(); // SIGKILL
    master.wait().unwrap();
    let committed = rows(&first_db);
    assert!(
        committed < TASKS as u64,
        "the kill came too late to test anything"
    );

    let resumed = scan(&dir, &["--resume"]).output().unwrap();
    let text = output_text(&resumed);
    assert!(resumed.status.success(), "{text}");
    assert!(
        text.contains(&format!("{TASKS} of {TASKS} integrals")),
        "{text}"
    );
    assert_eq!(number_before(&text, "from the store"), committed, "{text}");
    assert_eq!(
        number_before(&text, "computed"),
        TASKS as u64 - committed,
        "only the missing points ran: {text}"
    );

    let results = std::fs::read_to_string(dir.join("hyperion-runs/run-0003/results.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(results.as_bytes());
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        let (integral, exact): (f64, f64) =
            (record[1].parse().unwrap(), record[2].parse().unwrap());
        assert!((integral - exact).abs() < 1e-9, "a wrong value: {record:?}");
        *seen.entry(record[0].to_string()).or_default() += 1;
    }
    assert_eq!(seen.len(), TASKS, "every point present: {results}");
    assert!(seen.values().all(|n| *n == 1), "each point once: {seen:?}");
    assert_eq!(
        rows(&dir.join("hyperion-runs/run-0003/results.db")),
        TASKS as u64
    );
    assert_eq!(rows(&first_db), committed, "the old run is left as it was");
}

#[test]
fn resuming_with_nothing_to_resume_is_a_clear_error() {
    let dir = scratch("nothing");
    let output = scan(&dir, &["--resume", "run-0042"]).output().unwrap();
    let text = output_text(&output);
    assert!(!output.status.success());
    assert!(text.contains("cannot resume run-0042"), "{text}");
}

//! The seed explorer's command line: bad ranges are errors, never silently empty or
//! wrapped runs.

use std::process::{Command, Output};

fn explorer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hyperion-sim"))
        .args(args)
        .output()
        .expect("run the explorer")
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[test]
fn a_seed_range_past_the_last_seed_is_an_error_not_a_wrap() {
    let output = explorer(&[
        "explore",
        "--scenario",
        "ping_pong",
        "--start",
        "18446744073709551615",
        "--seeds",
        "10",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("--seeds"), "{}", text(&output));
}

#[test]
fn the_last_seed_alone_runs() {
    let output = explorer(&[
        "explore",
        "--scenario",
        "ping_pong",
        "--start",
        "18446744073709551615",
        "--seeds",
        "1",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("1 seeds"), "{}", text(&output));
}

#[test]
fn zero_seeds_is_an_error() {
    let output = explorer(&["explore", "--seeds", "0"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn help_answers_and_succeeds() {
    let output = explorer(&["--help"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("explore"), "{}", text(&output));
}

#[test]
fn a_plan_file_replays_with_its_scenario_and_seed() {
    let directory = std::env::temp_dir().join(format!("hyperion-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("a temporary directory");
    let path = directory.join("ping_pong.plan");
    std::fs::write(
        &path,
        "scenario ping_pong\nseed 3\nfault 2000000000 break 0 1\nfault 4000000000 partition 0 1 both 1000000000\n",
    )
    .expect("write the plan");
    let output = explorer(&["replay", "--plan", path.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("fault Break(0, 1)"),
        "{}",
        text(&output)
    );
    assert!(text(&output).contains("trace hash"), "{}", text(&output));
    std::fs::remove_dir_all(&directory).ok();
}

#[test]
fn a_bad_plan_file_is_an_error_naming_its_line() {
    let directory = std::env::temp_dir().join(format!("hyperion-sim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("a temporary directory");
    let path = directory.join("bad.plan");
    std::fs::write(&path, "scenario ping_pong\nseed 3\nfault soon break 0 1\n").expect("write");
    let output = explorer(&["replay", "--plan", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("line 3"), "{}", text(&output));
    let missing = explorer(&["replay", "--plan", "/nonexistent/plan"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    let neither = explorer(&["replay", "--scenario", "ping_pong"]);
    assert_eq!(neither.status.code(), Some(2), "{}", text(&neither));
    std::fs::remove_dir_all(&directory).ok();
}

#[test]
fn shrink_of_a_passing_seed_says_so_and_fails() {
    let output = explorer(&["shrink", "--scenario", "registry", "--seed", "0"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("passes"), "{}", text(&output));
}

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

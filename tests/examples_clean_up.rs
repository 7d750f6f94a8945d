//! Examples leave nothing behind in the temporary directory.

mod common;

use std::process::Command;

#[test]
fn two_nodes_leaves_no_cookie_in_the_temporary_directory() {
    // The example's temporary directory, and its child's, is this empty one.
    let tmp = common::temp_dir("two-nodes-tmp");
    let output = Command::new(common::example_binary("two_nodes"))
        .env("TMPDIR", tmp.path())
        .output()
        .expect("run the two_nodes example");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("first process got: hello"), "{text}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

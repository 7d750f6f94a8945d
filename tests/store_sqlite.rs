//! The SQLite result store: what it keeps, what it copies on resume, and the bad input
//! it refuses with an error that names the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyperion::store::{
    Key, ResultMeta, ResultStore, SqliteStore, StoreError, StoreErrorKind, STORE_FILE_NAME,
};
use hyperion::Node;

/// A fresh, empty directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hyperion-store-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn meta(label: &str) -> ResultMeta {
    ResultMeta {
        label: label.into(),
        worker: "worker-1".into(),
        duration: Duration::from_micros(1500),
        attempts: 2,
    }
}

fn key(n: u64) -> Key {
    Key::new("square", "v1", &n.to_le_bytes())
}

/// Stores `n → n²` for each `n` in `keys`.
fn fill(store: &Arc<SqliteStore>, keys: std::ops::Range<u64>) {
    let node = Node::new().unwrap();
    let store = store.clone();
    node.run(move |p| async move {
        for n in keys {
            let value = (n * n).to_le_bytes().to_vec();
            store.put(&p, key(n), value, meta("square")).await.unwrap();
        }
        store.flush(&p).await.unwrap();
    })
    .unwrap();
}

fn count(store: &Arc<SqliteStore>) -> u64 {
    let store = store.clone();
    Node::new()
        .unwrap()
        .run(move |p| async move { store.count(&p).await.unwrap() })
        .unwrap()
}

fn open(run: &Path, version: &str, resume_from: Option<&Path>) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open_run(run, version, resume_from).unwrap())
}

fn open_error(result: Result<SqliteStore, StoreError>) -> StoreError {
    match result {
        Ok(_) => panic!("the store opened"),
        Err(err) => err,
    }
}

#[test]
fn a_result_put_is_read_back_with_its_metadata_and_a_second_put_is_ignored() {
    let dir = scratch("roundtrip");
    let store = open(&dir, "v1", None);
    let node = Node::new().unwrap();
    let (found, missing, count) = node
        .run(move |p| async move {
            store
                .put(&p, key(3), vec![9], meta("square"))
                .await
                .unwrap();
            store
                .put(&p, key(3), vec![0], meta("square"))
                .await
                .unwrap();
            // Read before any flush: reads see the writes queued before them.
            let found = store.get(&p, key(3)).await.unwrap().unwrap();
            let missing = store.get(&p, key(4)).await.unwrap();
            store.flush(&p).await.unwrap();
            (found, missing, store.count(&p).await.unwrap())
        })
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(found.value, vec![9], "the first value stays");
    assert_eq!(found.meta, meta("square"));
    assert!(
        found.stored_at > Duration::from_secs(1_600_000_000),
        "wall-clock time"
    );
    assert_eq!(missing, None);
}

#[test]
fn results_survive_closing_and_reopening_the_store() {
    let dir = scratch("reopen");
    let store = open(&dir, "v1", None);
    fill(&store, 0..20);
    drop(store);
    let store = open(&dir, "v1", None);
    assert_eq!(count(&store), 20);
}

#[test]
fn a_resumed_run_starts_from_a_copy_and_leaves_the_old_run_as_it_was() {
    let dir = scratch("resume");
    let (old, new) = (dir.join("run-0001"), dir.join("run-0002"));
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&new).unwrap();
    let store = open(&old, "v1", None);
    fill(&store, 0..10);
    drop(store);
    let resumed = open(&new, "v1", Some(&old));
    assert_eq!(count(&resumed), 10);
    fill(&resumed, 10..15);
    assert_eq!(count(&resumed), 15);
    drop(resumed);
    let old_store = open(&old, "v1", None);
    assert_eq!(count(&old_store), 10, "the old run is not written to");
}

#[test]
fn a_run_in_use_cannot_be_resumed_and_a_second_resume_of_one_run_is_refused() {
    let dir = scratch("locks");
    let (old, a, b) = (dir.join("run-1"), dir.join("run-2"), dir.join("run-3"));
    for d in [&old, &a, &b] {
        std::fs::create_dir_all(d).unwrap();
    }
    let running = open(&old, "v1", None);
    let err = open_error(SqliteStore::open_run(&a, "v1", Some(&old)));
    assert_eq!(err.kind, StoreErrorKind::Locked);
    assert_eq!(err.path, old.join(STORE_FILE_NAME));
    assert!(
        err.to_string().contains("in use by another master"),
        "{err}"
    );
    drop(running);
    let first = open(&a, "v1", Some(&old));
    let err = open_error(SqliteStore::open_run(&b, "v1", Some(&old)));
    assert_eq!(err.kind, StoreErrorKind::Locked, "{err}");
    drop(first);
    // Once the first resumer is gone, the run can be resumed again.
    std::fs::remove_file(b.join(STORE_FILE_NAME)).ok();
    SqliteStore::open_run(&b, "v1", Some(&old)).unwrap();
}

/// A run directory holding `bytes` as its store.
fn run_with_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let run = dir.join(name);
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join(STORE_FILE_NAME), bytes).unwrap();
    run
}

#[test]
fn a_corrupt_store_is_an_error_naming_the_file() {
    let dir = scratch("corrupt");
    let old = run_with_file(&dir, "old", &[0x5a; 8192]);
    let new = dir.join("new");
    std::fs::create_dir_all(&new).unwrap();
    let err = open_error(SqliteStore::open_run(&new, "v1", Some(&old)));
    assert!(matches!(err.kind, StoreErrorKind::Open(_)), "{err}");
    assert_eq!(err.path, old.join(STORE_FILE_NAME));
    assert!(err.to_string().contains("old/results.db"), "{err}");
    // Opening it as a run's own store fails the same way.
    let err = open_error(SqliteStore::open_run(&old, "v1", None));
    assert!(matches!(err.kind, StoreErrorKind::Open(_)), "{err}");
}

#[test]
fn another_programs_database_is_refused_and_left_untouched() {
    let dir = scratch("foreign");
    let old = dir.join("old");
    std::fs::create_dir_all(&old).unwrap();
    let foreign = rusqlite::Connection::open(old.join(STORE_FILE_NAME)).unwrap();
    foreign
        .execute_batch("CREATE TABLE photos (id INTEGER); INSERT INTO photos VALUES (1);")
        .unwrap();
    drop(foreign);
    let before = std::fs::read(old.join(STORE_FILE_NAME)).unwrap();
    let new = dir.join("new");
    std::fs::create_dir_all(&new).unwrap();
    let err = open_error(SqliteStore::open_run(&new, "v1", Some(&old)));
    assert!(matches!(err.kind, StoreErrorKind::Foreign(_)), "{err}");
    let err = open_error(SqliteStore::open_run(&old, "v1", None));
    assert!(matches!(err.kind, StoreErrorKind::Foreign(_)), "{err}");
    assert!(err.to_string().contains("photos"), "{err}");
    assert_eq!(std::fs::read(old.join(STORE_FILE_NAME)).unwrap(), before);
}

#[test]
fn a_store_of_another_version_is_refused() {
    let dir = scratch("version");
    let (old, new) = (dir.join("old"), dir.join("new"));
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&new).unwrap();
    drop(SqliteStore::open_run(&old, "scan-v1", None).unwrap());
    let err = open_error(SqliteStore::open_run(&new, "scan-v2", Some(&old)));
    assert_eq!(
        err.kind,
        StoreErrorKind::Version {
            found: "scan-v1".into(),
            expected: "scan-v2".into()
        }
    );
    assert!(!new.join(STORE_FILE_NAME).exists(), "nothing copied");
}

#[test]
fn resuming_from_a_directory_without_a_store_is_an_error() {
    let dir = scratch("missing");
    let new = dir.join("new");
    std::fs::create_dir_all(&new).unwrap();
    let err = open_error(SqliteStore::open_run(
        &new,
        "v1",
        Some(&dir.join("run-0042")),
    ));
    assert!(matches!(err.kind, StoreErrorKind::Open(_)), "{err}");
    assert!(err.to_string().contains("run-0042"), "{err}");
    // A run directory without a store: refused, and nothing is written into it.
    let empty_run = dir.join("run-0001");
    std::fs::create_dir_all(&empty_run).unwrap();
    let err = open_error(SqliteStore::open_run(&new, "v1", Some(&empty_run)));
    assert!(err.to_string().contains("no such file"), "{err}");
    assert_eq!(std::fs::read_dir(&empty_run).unwrap().count(), 0);
}

#[test]
fn a_write_that_fails_is_an_error_naming_the_file() {
    let dir = scratch("full");
    let store = open(&dir, "v1", None);
    store.fill_disk_for_testing().unwrap();
    let node = Node::new().unwrap();
    let (err, later) = node
        .run(move |p| async move {
            // The file may have a little room left in its last page: fill it. A put only
            // queues its write; the failed commit shows at the next request or flush.
            let mut failed = None;
            for n in 0..64u64 {
                let outcome = store.put(&p, key(n), vec![0; 4096], meta("square")).await;
                if let Err(err) = outcome.and(store.flush(&p).await) {
                    failed = Some(err);
                    break;
                }
            }
            let later = store.put(&p, key(99), vec![1], meta("square")).await;
            (failed.expect("the disk filled up"), later)
        })
        .unwrap();
    assert_eq!(
        later.as_ref().err(),
        Some(&err),
        "a failed store fails what follows"
    );
    assert!(matches!(err.kind, StoreErrorKind::Write(_)), "{err}");
    assert!(
        err.to_string()
            .contains(&*dir.join(STORE_FILE_NAME).to_string_lossy()),
        "{err}"
    );
    assert!(err.to_string().contains("full"), "{err}");
}

//! The master's status server, against a real run: the `scan` example runs as the
//! master (local worker processes over TCP) and these tests talk to the server it
//! starts on loopback, over plain HTTP/1.1 written by hand (so that they can send what a
//! browser would not: a wrong `Host`, a malformed or huge body, half a request), and
//! through a real browser (headless Chromium driven over WebDriver).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{alive, require_slurm, scan_binary, temp_dir};
use serde_json::Value;

/// How long any condition may take to come true before a test fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// A scan running as a child process, killed (with its workers) when dropped.
struct Run {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    token: String,
    /// The scan's closing summary line (`scan: N of M integrals ...`), once printed.
    summary: std::sync::mpsc::Receiver<String>,
    dir: tempfile::TempDir,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Run {
    /// Starts `scan` with `args` in a fresh directory and reads the status line.
    fn start(name: &str, args: &[&str]) -> Run {
        let dir = temp_dir(&format!("status-{name}"));
        let mut child = Command::new(scan_binary())
            .args(args)
            // The page outlives the run, so that its final state can be read.
            .args(["--status-linger", "60"])
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the scan example");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx
            .recv_timeout(DEADLINE)
            .expect("the scan prints its status line first");
        // Keep draining its output so that it never blocks on a full pipe; pass on the
        // summary, printed once results.csv is final.
        let (summary_tx, summary) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in rx {
                if line.starts_with("scan: ") && line.contains(" integrals") {
                    let _ = summary_tx.send(line);
                }
            }
        });
        let url = line
            .strip_prefix("status: http://")
            .unwrap_or_else(|| panic!("not a status line: {line:?}"));
        let (addr, token) = url.split_once("/?token=").expect("URL with a token");
        Run {
            child,
            addr: addr.to_string(),
            token: token.to_string(),
            summary,
            dir,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/?token={}", self.addr, self.token)
    }

    /// A request with the token in its header.
    fn get(&self, path: &str) -> Response {
        http(
            &self.addr,
            "GET",
            path,
            &[("X-Hyperion-Token", &self.token)],
            b"",
        )
    }

    fn post(&self, path: &str, body: &str) -> Response {
        let headers = [
            ("X-Hyperion-Token", self.token.as_str()),
            ("Content-Type", "application/json"),
        ];
        http(&self.addr, "POST", path, &headers, body.as_bytes())
    }

    fn json(&self, path: &str) -> Value {
        let response = self.get(path);
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        response.json()
    }

    /// Waits until `check` finds what it wants in `/api/status`.
    fn wait_status<T>(&self, what: &str, check: impl Fn(&Value) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            let status = self.json("/api/status");
            if let Some(found) = check(&status) {
                return found;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}; last status {status:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the scan to finish (its page lingers); the number of results it wrote.
    /// (results.csv exists from the start and grows as results complete: the summary
    /// line says when it is final.)
    fn wait_results(&self) -> usize {
        self.summary
            .recv_timeout(DEADLINE)
            .expect("the scan did not finish");
        let csv = self.dir.path().join("hyperion-runs/run-0001/results.csv");
        let text = std::fs::read_to_string(&csv).expect("the scan wrote results.csv");
        text.lines().count().saturating_sub(1)
    }
}

/// The first held call's id, once there is one.
fn held_id(status: &Value) -> Option<String> {
    status["held"].get(0)?["id"].as_str().map(str::to_string)
}

fn count(status: &Value, state: &str) -> u64 {
    status["run"]["counts"][state].as_u64().unwrap_or(0)
}

/// An HTTP response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `error` message of a JSON error.
    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One HTTP/1.1 request on a fresh connection, `Host` set to `addr` unless `headers`
/// has one. A body sent while the server already answered (it refused it) is cut short
/// without failing: the answer is what counts.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect to the status server");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut bytes = Vec::new();
    // A reset after the answer arrived (the server did not read a refused body) ends
    // the read; what came before it is the answer.
    let _ = stream.read_to_end(&mut bytes);
    parse_response(&bytes)
}

fn parse_response(bytes: &[u8]) -> Response {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A scan that holds its failures, with task 1 failing once: it waits for a retry.
fn held_run(name: &str) -> Run {
    Run::start(
        name,
        &[
            "--workers",
            "2",
            "--tasks",
            "6",
            "--hold",
            "--fail-once",
            "1",
        ],
    )
}

#[test]
fn without_the_token_or_with_a_wrong_one_every_route_is_401_and_nothing_else() {
    let run = held_run("401");
    let wrong = "0".repeat(run.token.len());
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/api/status"),
        ("GET", "/no/such/route"),
        ("POST", "/api/held/retry-all"),
    ] {
        let none = http(&run.addr, method, path, &[], b"");
        let bad = http(
            &run.addr,
            method,
            path,
            &[("X-Hyperion-Token", &wrong)],
            b"",
        );
        let bad_cookie = http(
            &run.addr,
            method,
            path,
            &[("Cookie", &format!("hyperion_status={wrong}"))],
            b"",
        );
        for response in [none, bad, bad_cookie] {
            assert_eq!(response.status, 401, "{method} {path}");
            assert_eq!(response.body, r#"{"error":"unauthorized"}"#);
            assert!(response.header("set-cookie").is_none());
        }
    }
    let wrong_query = http(&run.addr, "GET", &format!("/?token={wrong}"), &[], b"");
    assert_eq!(wrong_query.status, 401);
    // With it: 200.
    assert_eq!(run.get("/api/status").status, 200);
    assert_eq!(run.get("/").status, 200);
}

#[test]
fn the_token_in_the_address_becomes_an_http_only_strict_cookie() {
    let run = held_run("cookie");
    let page = http(
        &run.addr,
        "GET",
        &format!("/?token={}", run.token),
        &[],
        b"",
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>hyperion status</title>"));
    let cookie = page.header("set-cookie").expect("a cookie");
    assert!(cookie.starts_with(&format!("hyperion_status={};", run.token)));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    // The cookie alone reads the API.
    let with_cookie = [("Cookie", format!("hyperion_status={}", run.token))];
    let headers: Vec<(&str, &str)> = with_cookie.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(
        http(&run.addr, "GET", "/api/status", &headers, b"").status,
        200
    );
    // The query works for the page only, not for the API.
    let query_api = http(
        &run.addr,
        "GET",
        &format!("/api/status?token={}", run.token),
        &[],
        b"",
    );
    assert_eq!(query_api.status, 401);
    // The token file in the run's directory is the same token, private to its owner.
    let run_dir = run.dir.path().join("hyperion-runs/run-0001");
    let file = std::fs::read_to_string(run_dir.join("status-token")).unwrap();
    assert_eq!(file.trim(), run.token);
    assert_eq!(run.token.len(), 32, "128 bits as hex");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(run_dir.join("status-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_wrong_host_header_is_refused() {
    let run = held_run("host");
    for host in ["evil.example:80", "attacker.test", ""] {
        let response = http(
            &run.addr,
            "GET",
            "/api/status",
            &[("Host", host), ("X-Hyperion-Token", &run.token)],
            b"",
        );
        assert_eq!(response.status, 403, "Host {host:?}");
        assert!(response.error().contains("Host"));
    }
    let port = run.addr.rsplit(':').next().unwrap();
    let localhost = format!("localhost:{port}");
    let response = http(
        &run.addr,
        "GET",
        "/api/status",
        &[("Host", &localhost), ("X-Hyperion-Token", &run.token)],
        b"",
    );
    assert_eq!(response.status, 200);
}

#[test]
fn a_change_needs_post_and_the_token_in_its_header_not_only_the_cookie() {
    let run = held_run("post");
    let id = run.wait_status("a held call", held_id);
    let body = format!(r#"{{"id":"{id}"}}"#);
    let cookie = format!("hyperion_status={}", run.token);
    let by_cookie = http(
        &run.addr,
        "POST",
        "/api/held/retry",
        &[("Cookie", &cookie)],
        body.as_bytes(),
    );
    assert_eq!(by_cookie.status, 403);
    assert!(by_cookie.error().contains("X-Hyperion-Token"));
    // A GET to a change's route is not a change.
    let get = run.get("/api/held/retry");
    assert_eq!(get.status, 405);
    assert!(get.error().contains("POST"));
    // Nothing was retried.
    assert_eq!(held_id(&run.json("/api/status")), Some(id));
}

#[test]
fn retrying_a_held_call_runs_it_again_and_the_scan_completes() {
    let run = held_run("retry");
    let id = run.wait_status("a held call", held_id);
    let status = run.json("/api/status");
    assert_eq!(status["held"][0]["tasks"][0], "001 a=1.2000");
    assert!(status["held"][0]["error"]
        .as_str()
        .unwrap()
        .contains("injected failure"));
    let held = run.json("/api/tasks?state=held");
    assert_eq!(held[0]["key"], "001 a=1.2000");
    assert_eq!(held[0]["attempts"], 1);
    let response = run.post("/api/held/retry", &format!(r#"{{"id":"{id}"}}"#));
    assert_eq!(response.status, 202, "{}", response.body);
    run.wait_status("every task done", |s| (count(s, "done") == 6).then_some(()));
    let task = &run.json("/api/tasks?state=done")[1];
    assert_eq!(task["key"], "001 a=1.2000");
    assert_eq!(task["attempts"], 2);
    assert!(run.json("/api/held").as_array().unwrap().is_empty());
    assert_eq!(run.wait_results(), 6, "the scan ends with every result");
}

#[test]
fn cancelling_a_running_task_stops_its_worker() {
    let run = Run::start(
        "cancel",
        &["--workers", "1", "--tasks", "2", "--pause-ms", "600000"],
    );
    let (key, job) = run.wait_status("a running task", |s| {
        let worker = s["workers"].get(0)?;
        let task = worker["task"].as_str()?;
        (worker["state"] == "connected").then(|| {
            (
                task.to_string(),
                worker["job"].as_str().unwrap().to_string(),
            )
        })
    });
    let pid: u32 = job.parse().expect("a local worker's job is its PID");
    assert!(alive(pid));
    let response = run.post("/api/tasks/cancel", &format!(r#"{{"key":"{key}"}}"#));
    assert_eq!(response.status, 202, "{}", response.body);
    run.wait_status("the worker cancelled", |s| {
        (s["workers"][0]["state"] == "cancelled" && count(s, "cancelled") == 1).then_some(())
    });
    let start = Instant::now();
    while alive(pid) {
        assert!(
            start.elapsed() < DEADLINE,
            "worker process {pid} still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let again = run.post("/api/tasks/cancel", &format!(r#"{{"key":"{key}"}}"#));
    assert_eq!(
        again.status, 409,
        "a cancelled task cannot be cancelled again"
    );
}

#[test]
fn bad_input_gets_clear_json_errors_and_leaves_the_master_working() {
    let run = held_run("bad-input");
    let id = run.wait_status("a held call", held_id);
    // A slow client: half a request, left open while the others are served.
    let mut slow = TcpStream::connect(&run.addr).unwrap();
    slow.write_all(b"POST /api/held/retry HTTP/1.1\r\nHost: ")
        .unwrap();

    let unknown = run.get("/api/no/such/route");
    assert_eq!(unknown.status, 404);
    assert!(unknown.error().contains("no such route"));
    for (body, says) in [
        (r#"{"id":"#, "malformed JSON"),
        ("not json", "malformed JSON"),
        (r#"{"id": 7}"#, "malformed JSON"),
        (r#"{"id":"x","extra":1}"#, "unknown field"),
    ] {
        let response = run.post("/api/held/retry", body);
        assert_eq!(response.status, 400, "{body}");
        assert!(response.error().contains(says), "{body}: {}", response.body);
    }
    let unknown_held = run.post("/api/held/retry", r#"{"id":"no-such-call"}"#);
    assert_eq!(unknown_held.status, 404);
    let unknown_task = run.post("/api/tasks/cancel", r#"{"key":"no-such-task"}"#);
    assert_eq!(unknown_task.status, 404);
    let bad_state = run.get("/api/tasks?state=sleeping");
    assert_eq!(bad_state.status, 400);
    let huge = vec![b'x'; 1 << 20];
    let headers = [("X-Hyperion-Token", run.token.as_str())];
    let too_big = http(&run.addr, "POST", "/api/held/retry", &headers, &huge);
    assert_eq!(too_big.status, 413);
    assert!(too_big.error().contains("larger than"));
    let unknown_log = run.get("/api/workers/log?service=../../etc/passwd");
    assert_eq!(unknown_log.status, 404);

    // The master is unaffected: the held call is still there and a retry completes it.
    assert_eq!(held_id(&run.json("/api/status")), Some(id.clone()));
    assert_eq!(
        run.post("/api/held/retry", &format!(r#"{{"id":"{id}"}}"#))
            .status,
        202
    );
    assert_eq!(run.wait_results(), 6);
    drop(slow);
}

#[test]
fn a_workers_log_is_served_by_the_api() {
    let run = held_run("log");
    let status = run.wait_status("a held call", |s| held_id(s).map(|_| s.clone()));
    let service = status["workers"][0]["service"].as_str().unwrap();
    let log = run.json(&format!("/api/workers/log?service={service}&lines=5"));
    let lines = log["lines"].as_array().unwrap();
    assert!(!lines.is_empty() && lines.len() <= 5, "{log:#}");
}

// ----- the page in a real browser -----

/// Chromium and its WebDriver, if installed (Debian's `chromium` and
/// `chromium-driver`). Without them the browser test says so and passes, unless
/// `HYPERION_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs them).
fn browser() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        names.iter().find_map(|name| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    };
    let found = find(&["chromium", "chromium-browser"]).zip(find(&["chromedriver"]));
    if found.is_none() {
        if std::env::var("HYPERION_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("HYPERION_REQUIRE_BROWSER=1 but chromium or chromedriver is missing (apt-get install chromium chromium-driver)");
        }
        eprintln!("notice: no chromium/chromedriver here; the status page's browser test is SKIPPED (apt-get install chromium chromium-driver)");
    }
    found
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the page shows, read from its DOM.
#[derive(Debug, Default, PartialEq)]
struct Shown {
    done: u64,
    total: u64,
    workers: u64,
    held: u64,
    live: bool,
}

const READ_PAGE: &str = r##"
    const text = (id) => document.getElementById(id).textContent;
    return [text("count-done"), text("count-total"), text("workers-count"),
            String(document.querySelectorAll("#held tbody tr").length),
            text("link-state")];
"##;

async fn shown(client: &fantoccini::Client) -> Shown {
    let value = client
        .execute(READ_PAGE, vec![])
        .await
        .expect("read the page");
    let fields: Vec<String> = serde_json::from_value(value).expect("five strings");
    let number = |i: usize| fields[i].trim().parse::<u64>().unwrap_or(u64::MAX);
    Shown {
        done: number(0),
        total: number(1),
        workers: number(2),
        held: number(3),
        live: fields[4] == "live",
    }
}

/// Waits until the page shows `want`.
async fn wait_shown(
    client: &fantoccini::Client,
    what: &str,
    want: impl Fn(&Shown) -> bool,
) -> Shown {
    let start = Instant::now();
    loop {
        let now = shown(client).await;
        if want(&now) {
            return now;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the page never showed {what}; it shows {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn save_screenshot(client: &fantoccini::Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, &png).expect("write the screenshot");
    eprintln!("screenshot: {}", path.display());
    path
}

#[test]
fn the_page_in_chromium_follows_the_run_and_its_retry_button_completes_a_held_call() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let _driver = Killed(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < DEADLINE, "chromedriver does not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
    // 12 tasks of 300 ms on 2 workers; task 3 fails once and is held.
    let run = Run::start(
        "browser",
        &[
            "--workers",
            "2",
            "--tasks",
            "12",
            "--pause-ms",
            "300",
            "--hold",
            "--fail-once",
            "3",
        ],
    );
    let profile = temp_dir("status-chromium-profile");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_string(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1280,1300",
                         format!("--user-data-dir={}", profile.path().display())],
            }),
        );
        let client = fantoccini::ClientBuilder::new(
            hyper_util::client::legacy::connect::HttpConnector::new(),
        )
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session with chromium");
        client.goto(&run.url()).await.expect("load the page");
        // Every task but the held one done, one held call, the page live.
        let held = wait_shown(&client, "11 of 12 done and a held call", |s| {
            s.live && s.done == 11 && s.total == 12 && s.held == 1
        })
        .await;
        // The worker count is the master's.
        let workers = run.json("/api/workers").as_array().unwrap().len() as u64;
        assert_eq!(held.workers, workers);
        let path = save_screenshot(&client, "status-page-held.png").await;
        if std::env::var("HYPERION_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
            let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/status-page.png");
            std::fs::copy(&path, docs).expect("update docs/status-page.png");
        }
        // The token left the address bar once the cookie was set.
        let address = client.current_url().await.unwrap();
        assert!(!address.as_str().contains("token"), "{address}");

        // The page redraws its table on every refresh: a button found just before a
        // redraw is stale by the click, so find it again until a click lands.
        let mut attempts = 0;
        loop {
            let retry = client
                .find(fantoccini::Locator::Css("#held button.retry"))
                .await
                .expect("a retry button");
            match retry.click().await {
                Ok(_) => break,
                Err(fantoccini::error::CmdError::Standard(err))
                    if err.error == fantoccini::error::ErrorStatus::StaleElementReference
                        && attempts < 50 =>
                {
                    attempts += 1;
                }
                Err(err) => panic!("click retry: {err:?}"),
            }
        }
        // The retry launches a third worker, which runs the held task.
        let done = wait_shown(&client, "every task done", |s| {
            s.done == 12 && s.total == 12 && s.held == 0 && s.workers == 3
        })
        .await;
        assert_eq!(
            done.workers,
            run.json("/api/workers").as_array().unwrap().len() as u64
        );
        save_screenshot(&client, "status-page-done.png").await;
        client.close().await.expect("end the session");
    });
    assert_eq!(run.wait_results(), 12);
}

// ----- cancelling a Slurm job from the page -----

/// Whether Slurm still has job `id` (pending, running or ending).
fn slurm_has_job(id: &str) -> bool {
    Command::new("squeue")
        .args(["-h", "-j", id, "-o", "%i"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == id)
        .unwrap_or(false)
}

#[test]
#[ignore = "needs Slurm: scripts/local-slurm.sh, then --include-ignored"]
fn cancelling_a_task_from_the_page_ends_its_slurm_job() {
    require_slurm();
    let run = Run::start(
        "slurm-cancel",
        &[
            "--launcher",
            "slurm",
            "--workers",
            "1",
            "--tasks",
            "2",
            "--pause-ms",
            "600000",
        ],
    );
    let (key, job) = run.wait_status("a task running in a Slurm job", |s| {
        let worker = s["workers"].get(0)?;
        let task = worker["task"].as_str()?;
        (worker["state"] == "connected").then(|| {
            (
                task.to_string(),
                worker["job"].as_str().unwrap().to_string(),
            )
        })
    });
    assert!(slurm_has_job(&job), "job {job} runs the worker");
    let response = run.post("/api/tasks/cancel", &format!(r#"{{"key":"{key}"}}"#));
    assert_eq!(response.status, 202, "{}", response.body);
    let start = Instant::now();
    while slurm_has_job(&job) {
        assert!(
            start.elapsed() < DEADLINE,
            "Slurm job {job} still there after the cancel"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = run.json("/api/status");
    assert_eq!(status["workers"][0]["state"], "cancelled");
    assert_eq!(count(&status, "cancelled"), 1);
}

#[test]
fn a_client_too_slow_with_its_headers_is_cut_off_while_others_are_served() {
    let run = held_run("slow-client");
    let mut slow = TcpStream::connect(&run.addr).unwrap();
    slow.set_read_timeout(Some(DEADLINE)).unwrap();
    slow.write_all(b"GET /api/status HTTP/1.1\r\nHost: ")
        .unwrap();
    // Served meanwhile.
    assert_eq!(run.get("/api/status").status, 200);
    // The server closes the slow connection after its header timeout (10 s); a read
    // that times out instead (DEADLINE) fails the test.
    let mut rest = Vec::new();
    let closed = slow.read_to_end(&mut rest);
    assert!(
        closed.is_ok(),
        "the slow connection was left open: {closed:?}"
    );
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text:?}"
    );
    assert_eq!(run.get("/api/status").status, 200);
}

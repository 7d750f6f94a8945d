//! The JSON API: the master's state (read from the published snapshot) and the changes
//! an operator may ask for (sent to the master's agent, never waited for). Errors are
//! JSON objects with an `error` message.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::agent::StatusCommand;
use super::auth::Token;
use super::snapshot::{StatusBoard, TaskInfo, TaskState};

/// What every handler sees (the server builds it; the API's handlers and the server's
/// guard read it). Here, beside the handlers, so that the API does not import the
/// server that routes to it.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) board: StatusBoard,
    pub(super) token: Arc<Token>,
    /// `Host` header values naming this server.
    pub(super) hosts: Arc<Vec<String>>,
    pub(super) page: Arc<String>,
}

/// Largest request body accepted (a command is a few dozen bytes).
pub const BODY_BYTES_MAX: usize = 16 * 1024;

/// How long a client may take to send its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Most tasks one `/api/tasks` answer lists.
pub const TASKS_PAGE_MAX: usize = 100_000;

/// Most log lines one `/api/workers/log` answer holds, and the bytes read to find them.
pub const LOG_LINES_MAX: usize = 1000;
const LOG_TAIL_BYTES_MAX: u64 = 256 * 1024;

/// A JSON error response.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    }
}

/// `GET /api/status`: the run, workers, held calls and the progress series.
pub async fn status(State(state): State<AppState>) -> Response {
    let overview = state.board.lock().overview();
    json(&overview)
}

/// `GET /api/run`.
pub async fn run(State(state): State<AppState>) -> Response {
    let overview = state.board.lock().overview();
    json(&overview.run)
}

/// `GET /api/workers`.
pub async fn workers(State(state): State<AppState>) -> Response {
    let overview = state.board.lock().overview();
    json(&overview.workers)
}

/// `GET /api/held`.
pub async fn held(State(state): State<AppState>) -> Response {
    let overview = state.board.lock().overview();
    json(&overview.held)
}

/// The query of `/api/tasks`.
#[derive(Deserialize)]
pub struct TasksQuery {
    /// Only tasks in this state (`queued`, `running`, ...), or all but `done` for
    /// `active`.
    state: Option<String>,
    /// At most this many (default and maximum [`TASKS_PAGE_MAX`]).
    limit: Option<usize>,
}

/// `GET /api/tasks?state=&limit=`.
pub async fn tasks(State(state): State<AppState>, Query(query): Query<TasksQuery>) -> Response {
    let wanted: Box<dyn Fn(&TaskInfo) -> bool> =
        match query.state.as_deref() {
            None => Box::new(|_| true),
            Some("active") => Box::new(|t| t.state != TaskState::Done),
            Some(name) => match TaskState::ALL.into_iter().find(|s| {
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(|v| v == name))
                    == Some(true)
            }) {
                Some(s) => Box::new(move |t| t.state == s),
                None => return error(
                    StatusCode::BAD_REQUEST,
                    "unknown state: use queued, running, done, failed, held, cancelled or active",
                ),
            },
        };
    let limit = query.limit.unwrap_or(TASKS_PAGE_MAX).min(TASKS_PAGE_MAX);
    let snapshot = state.board.snapshot();
    let tasks: Vec<&TaskInfo> = snapshot
        .tasks
        .iter()
        .filter(|t| wanted(t))
        .take(limit)
        .collect();
    json(&tasks)
}

/// The query of `/api/workers/log`.
#[derive(Deserialize)]
pub struct LogQuery {
    /// The worker's service id.
    service: String,
    /// How many lines from the end (default 100, at most [`LOG_LINES_MAX`]).
    lines: Option<usize>,
}

/// `GET /api/workers/log?service=&lines=`: the last lines of a worker's log. Only a
/// file the board lists for a worker is read: no path comes from the request.
pub async fn worker_log(State(state): State<AppState>, Query(query): Query<LogQuery>) -> Response {
    let file = {
        let snapshot = state.board.lock();
        match snapshot.workers.get(&query.service) {
            None => return error(StatusCode::NOT_FOUND, "no such worker"),
            Some(worker) => worker.log_file.clone(),
        }
    };
    let Some(file) = file else {
        return error(StatusCode::NOT_FOUND, "this worker has no log file");
    };
    let lines = query.lines.unwrap_or(100).min(LOG_LINES_MAX);
    match tail(&file, lines) {
        Ok(text) => json(&serde_json::json!({
            "service": query.service,
            "file": file,
            "lines": text,
        })),
        Err(err) => error(
            StatusCode::NOT_FOUND,
            &format!("cannot read the worker's log: {err}"),
        ),
    }
}

/// The last `lines` lines of `path`, reading at most its last [`LOG_TAIL_BYTES_MAX`].
fn tail(path: &Path, lines: usize) -> std::io::Result<Vec<String>> {
    let mut file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    let start = length.saturating_sub(LOG_TAIL_BYTES_MAX);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(LOG_TAIL_BYTES_MAX).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && !all.is_empty() {
        all.remove(0); // cut in the middle
    }
    let from = all.len().saturating_sub(lines);
    Ok(all[from..].iter().map(|line| line.to_string()).collect())
}

/// Reads a request's JSON body within [`BODY_BYTES_MAX`] and [`BODY_TIMEOUT`].
async fn read_json<T: for<'de> Deserialize<'de>>(body: Body) -> Result<T, Response> {
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, BODY_BYTES_MAX))
        .await
    {
        Err(_) => {
            return Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "the body took too long to arrive",
            ))
        }
        Ok(Err(_)) => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is larger than {BODY_BYTES_MAX} bytes (or broken)"),
            ))
        }
        Ok(Ok(bytes)) => bytes,
    };
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    serde_json::from_slice(bytes).map_err(|err| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("malformed JSON body: {err}"),
        )
    })
}

/// The body of a command on one held call.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldId {
    id: String,
}

/// The body of a command on one task.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskKey {
    key: String,
}

/// An empty body (`{}` or nothing).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nothing {}

fn send(state: &AppState, command: StatusCommand) -> Response {
    match state.board.command(command) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "accepted": true })),
        )
            .into_response(),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the master's program has not attached its status board yet",
        ),
    }
}

/// `POST /api/held/retry {"id": ...}`: retries one held call.
pub async fn retry(State(state): State<AppState>, body: Body) -> Response {
    let HeldId { id } = match read_json(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if !state.board.lock().held.contains_key(&id) {
        return error(StatusCode::NOT_FOUND, "no such held call");
    }
    send(&state, StatusCommand::Retry(id))
}

/// `POST /api/held/retry-all` (also `/api/holds/release`): retries every held call.
pub async fn retry_all(State(state): State<AppState>, body: Body) -> Response {
    if let Err(response) = read_json::<Nothing>(body).await {
        return response;
    }
    send(&state, StatusCommand::RetryAll)
}

/// `POST /api/held/cancel {"id": ...}`: gives up a held call; its tasks are cancelled.
pub async fn cancel_held(State(state): State<AppState>, body: Body) -> Response {
    let HeldId { id } = match read_json(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if !state.board.lock().held.contains_key(&id) {
        return error(StatusCode::NOT_FOUND, "no such held call");
    }
    send(&state, StatusCommand::CancelHeld(id))
}

/// `POST /api/tasks/cancel {"key": ...}`: cancels a task and stops its worker.
pub async fn cancel_task(State(state): State<AppState>, body: Body) -> Response {
    let TaskKey { key } = match read_json(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    match state.board.lock().task(&key).map(|t| t.state) {
        None => return error(StatusCode::NOT_FOUND, "no such task"),
        Some(TaskState::Done | TaskState::Cancelled) => {
            return error(StatusCode::CONFLICT, "the task is already finished")
        }
        Some(_) => {}
    }
    send(&state, StatusCommand::CancelTask(key))
}

/// Any other path.
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route; see /api/status")
}

/// A known path with another method.
pub async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: reads are GET, changes are POST",
    )
}

//! The HTTP server: axum on hyper, driven by a single-threaded tokio runtime on a
//! thread of its own (real-world only: nothing the simulator runs reaches this file).
//! Every request passes [`guard`] first: the token, then the `Host` header, then the
//! rule that changes are `POST`s carrying the token in a header.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

use super::api::{self, error, AppState};
use super::auth::{shown_token, Token, TOKEN_COOKIE, TOKEN_HEADER};
use super::page;
use super::snapshot::StatusBoard;

/// Where the status server listens, and where its token goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusConfig {
    /// The address to bind: `127.0.0.1:0` (loopback, a free port) by default. Binding
    /// elsewhere exposes the page (behind its token) to other machines.
    pub addr: SocketAddr,
    /// Where to write the token (mode 0600), e.g. `status-token` in the run's
    /// directory; `None`: nowhere.
    pub token_file: Option<PathBuf>,
    /// How long the server stays up after it is dropped (the run ended), so that the
    /// page can show the final state. Zero by default.
    pub linger: Duration,
}

impl Default for StatusConfig {
    fn default() -> StatusConfig {
        StatusConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token_file: None,
            linger: Duration::ZERO,
        }
    }
}

/// A running status server; dropping it stops the server.
///
/// ```no_run
/// use hyperion::status::{StatusBoard, StatusConfig, StatusServer};
/// let board = StatusBoard::new("scan", vec![]);
/// let server = StatusServer::start(StatusConfig::default(), board.clone())?;
/// println!("status: {}", server.url());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct StatusServer {
    addr: SocketAddr,
    token: Token,
    board: StatusBoard,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    linger: Duration,
}

impl std::fmt::Debug for StatusServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StatusServer({})", self.addr)
    }
}

impl StatusServer {
    /// Binds `config.addr`, writes a fresh token to `config.token_file`, and serves
    /// `board` on a thread of its own.
    pub fn start(config: StatusConfig, board: StatusBoard) -> std::io::Result<StatusServer> {
        let token = Token::generate()?;
        if let Some(path) = &config.token_file {
            token.write_to(path)?;
        }
        let listener = std::net::TcpListener::bind(config.addr)?; // real-world only
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let started = std::time::SystemTime::now() // real-world only
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        board.set_started_unix(started.as_secs_f64());
        let state = AppState {
            board: board.clone(),
            token: Arc::new(token.clone()),
            hosts: Arc::new(allowed_hosts(addr)),
            page: Arc::new(page::html(&token)),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new() // real-world only
            .name("hyperion-status".to_string())
            .spawn(move || serve(listener, state, stopped))?;
        tracing::info!(%addr, "status server started");
        Ok(StatusServer {
            addr,
            token,
            board,
            stop: Some(stop),
            thread: Some(thread),
            linger: config.linger,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The run's token.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The page's address with the token, as printed at start.
    pub fn url(&self) -> String {
        format!("http://{}/?token={}", self.addr, self.token.as_str())
    }

    /// The board it shows.
    pub fn board(&self) -> &StatusBoard {
        &self.board
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        if !self.linger.is_zero() {
            println!("status: the page stays up for {:?}", self.linger);
            std::thread::sleep(self.linger); // real-world only
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The `Host` values a browser sends for this server. Anything else is a page of
/// another site reaching us through DNS rebinding, and is refused.
fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut hosts = vec![addr.to_string()];
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        hosts.push(format!("127.0.0.1:{port}"));
        hosts.push(format!("localhost:{port}"));
        hosts.push(format!("[::1]:{port}"));
    }
    if addr.ip().is_unspecified() {
        if let Ok(name) = nix::unistd::gethostname() {
            hosts.push(format!("{}:{port}", name.to_string_lossy()));
        }
    }
    hosts
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/status.css", get(|| async { page::css() }))
        .route("/status.js", get(|| async { page::js() }))
        .route("/api/status", get(api::status))
        .route("/api/run", get(api::run))
        .route("/api/workers", get(api::workers))
        .route("/api/tasks", get(api::tasks))
        .route("/api/held", get(api::held))
        .route("/api/workers/log", get(api::worker_log))
        .route("/api/held/retry", post(api::retry))
        .route("/api/held/retry-all", post(api::retry_all))
        .route("/api/holds/release", post(api::retry_all))
        .route("/api/held/cancel", post(api::cancel_held))
        .route("/api/tasks/cancel", post(api::cancel_task))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// `GET /`: the page, with the token for its `POST`s; a token shown in the query is
/// turned into a cookie, so that the next loads need no token in the address.
async fn index(State(state): State<AppState>) -> Response {
    let cookie = format!(
        "{TOKEN_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        state.token.as_str()
    );
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        state.page.to_string(),
    )
        .into_response();
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Checks every request before its handler: the token (401 with nothing else said),
/// the `Host` header (403), and that a change is a `POST` with the token in its header.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let header_token = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    // The query may carry the token only to load the page itself.
    let query = (request.method() == Method::GET && request.uri().path() == "/")
        .then(|| request.uri().query())
        .flatten();
    let authorized =
        shown_token(header_token, cookies, query).is_some_and(|t| state.token.matches(t));
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !host.is_some_and(|host| state.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))) {
        return error(
            StatusCode::FORBIDDEN,
            "this server does not answer for that Host",
        );
    }
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        let in_header = header_token.is_some_and(|t| state.token.matches(t));
        if method == Method::POST && !in_header {
            return error(
                StatusCode::FORBIDDEN,
                "a change needs the token in the X-Hyperion-Token header",
            );
        }
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|length| length > api::BODY_BYTES_MAX as u64) {
        // Refused before a byte of it is read.
        let message = format!("the body is larger than {} bytes", api::BODY_BYTES_MAX);
        return error(StatusCode::PAYLOAD_TOO_LARGE, &message);
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The server thread: a single-threaded runtime serving until told to stop.
fn serve(
    listener: std::net::TcpListener,
    state: AppState,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    // The runtime, its sockets and its timers are real-world only, like this thread.
    let runtime = match tokio::runtime::Builder::new_current_thread() // real-world only
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(%err, "cannot start the status server's runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(err) => {
                tracing::error!(%err, "cannot serve the status page");
                return;
            }
        };
        // Stop at once when asked: open keep-alive connections are not waited for.
        let accepting = std::pin::pin!(accept(listener, router(state)));
        futures::future::select(accepting, stopped).await;
        tracing::debug!("status server stopped");
    });
}

/// Most connections served at once; more are closed on arrival (a page needs one or
/// two, and a client holding many open must not run the process out of descriptors).
pub const CONNECTIONS_MAX: usize = 64;

/// How long a client may take to send a request's headers before its connection is
/// closed (a slow client holds nothing else up meanwhile: connections are served
/// concurrently).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections and serves each on its own task, with a header timeout and a
/// bound on connections at once.
async fn accept(listener: tokio::net::TcpListener, router: Router) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of descriptors, or a connection reset before it was accepted:
                // wait a little rather than spin.
                tracing::warn!(%err, "status server cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= CONNECTIONS_MAX {
            tracing::warn!("status server: too many connections; closing a new one");
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (open, service) = (open.clone(), TowerToHyperService::new(router.clone()));
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = connection.await {
                tracing::debug!(%err, "status connection ended");
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

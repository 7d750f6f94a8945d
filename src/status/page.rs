//! The status page: plain HTML, CSS and a little JavaScript kept in the crate (no CDN,
//! no web font: login nodes are often offline), polling the JSON API once a second.

use axum::http::header;
use axum::response::IntoResponse;

use super::auth::Token;

const HTML: &str = include_str!("page/index.html");
const CSS: &str = include_str!("page/status.css");
const JS: &str = include_str!("page/status.js");

/// The page, with the run's token for the script's `POST`s (it is served only to
/// requests that showed the token, and other sites cannot read it).
pub(crate) fn html(token: &Token) -> String {
    HTML.replace("{{TOKEN}}", token.as_str())
}

pub(crate) fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

pub(crate) fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
}

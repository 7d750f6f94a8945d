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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        // Login nodes are often offline: no CDN, no web font, no remote script.
        for (name, text) in [("index.html", HTML), ("status.css", CSS), ("status.js", JS)] {
            for remote in ["http://", "https://", "//cdn", "@import", "url("] {
                assert!(!text.contains(remote), "{name} refers to {remote}");
            }
        }
        let token = Token::generate().unwrap();
        let page = html(&token);
        assert!(page.contains(&format!(r#"content="{}""#, token.as_str())));
        assert!(!page.contains("{{TOKEN}}"));
    }
}

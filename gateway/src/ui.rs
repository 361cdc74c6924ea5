//! `GET /ui`: the web page, its files compiled into the binary (nothing fetched at run time).
//!
//! The files hold no data: every answer the page shows comes from the API, with the key the
//! user typed, so the page itself needs no key. A strict Content-Security-Policy keeps it to
//! its own scripts and the gateway's API; photos come from the browser's own files (`blob:`)
//! or, for a scanned URL, from that URL.

use poem::{
    Response, Route, get, handler,
    http::{StatusCode, header},
    web::Path,
};

/// The page's files: name, media type, content.
const FILES: [(&str, &str, &str); 7] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../ui/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../ui/style.css"),
    ),
    (
        "errors.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/errors.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/api.js"),
    ),
    (
        "scan.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/scan.js"),
    ),
    (
        "viewer.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/viewer.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/app.js"),
    ),
];

/// Scripts and styles from the gateway only; requests to the gateway only; pictures from the
/// gateway, the browser's files, or the http(s) URLs that were scanned.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
    img-src 'self' blob: data: http: https:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

fn file(name: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, mime, body)| (*mime, *body))
}

fn answer(name: &str) -> Response {
    let Some((mime, body)) = file(name) else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("text/plain; charset=utf-8")
            .body("no such file in the page");
    };
    Response::builder()
        .content_type(mime)
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
}

/// The page at `/ui/`; `/ui` is sent there, so that the page's relative links resolve
/// under it (a relative `Location`, right behind a proxy that adds a path prefix too).
#[handler]
fn index(req: &poem::Request) -> Response {
    if req.original_uri().path().ends_with('/') {
        return answer("index.html");
    }
    Response::builder()
        .status(StatusCode::PERMANENT_REDIRECT)
        .header(header::LOCATION, "ui/")
        .finish()
}

#[handler]
fn asset(Path(name): Path<String>) -> Response {
    answer(&name)
}

/// `/ui`, `/ui/` and `/ui/{file}`.
pub fn routes() -> Route {
    Route::new().at("/", get(index)).at("/:name", get(asset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        for (_, _, body) in FILES {
            for line in body.lines() {
                let Some(from) = line.split(" from \"./").nth(1) else {
                    continue;
                };
                let name = from.split('"').next().unwrap_or_default();
                assert!(file(name).is_some(), "{name} is imported but not served");
            }
        }
        assert!(file("../Cargo.toml").is_none());
    }
}

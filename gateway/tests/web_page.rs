//! `GET /ui`: the page's files come from the binary with a strict Content-Security-Policy and
//! no key (they hold no data), and nothing else is served under it.

mod common;

use common::System;
use poem::http::Method;

#[tokio::test]
async fn the_page_is_served_from_the_binary_under_a_strict_policy() {
    let (env, _admin) = System::secured("web-page").await;
    // `/ui` → `/ui/` needs the server's original URI: the browser test opens `/ui` on a socket.
    for (path, mime, needle) in [
        ("/ui/", "text/html; charset=utf-8", "id=\"file-input\""),
        ("/ui/app.js", "text/javascript; charset=utf-8", "import "),
        ("/ui/style.css", "text/css; charset=utf-8", ".face-box"),
    ] {
        let answer = env.send_as(None, Method::GET, path, vec![]).await;
        assert_eq!(answer.status, 200, "{path} needs no key");
        assert_eq!(answer.headers["content-type"], mime, "{path}");
        let csp = answer.headers["content-security-policy"]
            .to_str()
            .expect("ascii");
        for rule in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
        ] {
            assert!(csp.contains(rule), "{path}: {csp}");
        }
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
        let body = answer.body.as_str().expect("text").to_owned();
        assert!(body.contains(needle), "{path}");
        for external in ["src=\"http", "href=\"http", "from \"http", "url(http"] {
            assert!(
                !body.contains(external),
                "{path} fetches nothing from elsewhere"
            );
        }
    }
    for missing in [
        "/ui/nothing.js",
        "/ui/..%2FCargo.toml",
        "/ui/%2e%2e/openapi.json",
    ] {
        let answer = env.send_as(None, Method::GET, missing, vec![]).await;
        assert_eq!(answer.status, 404, "{missing}");
    }
    env.cleanup().await;
}

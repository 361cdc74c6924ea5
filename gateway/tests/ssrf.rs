//! `/scan/url` with private addresses disallowed (the default) reaches public hosts only.

mod common;

use std::collections::HashMap;

use common::{
    Options, System, error_code, hosts,
    http_server::{Answer, HttpServer},
    png,
};
use gateway::fetch::FetchConfig;

async fn strict_env(tag: &str, static_hosts: &[(&str, &str)]) -> System {
    let mut fetch = FetchConfig::new(1 << 20, false);
    fetch.allowed_ports = None; // the test server runs on a random port
    fetch.static_hosts = hosts(static_hosts);
    System::with(
        tag,
        Options {
            fetch,
            ..Options::default()
        },
    )
    .await
}

#[tokio::test]
async fn private_literals_and_names_are_refused() {
    let server = HttpServer::start(HashMap::from([(
        "/img.png".to_owned(),
        Answer::ok(png(1), "image/png"),
    )]))
    .await;
    let port = server.addr.port();
    let env = strict_env("ssrf", &[]).await;
    for url in [
        format!("http://127.0.0.1:{port}/img.png"),
        format!("http://[::1]:{port}/img.png"),
        format!("http://10.0.0.1:{port}/img.png"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://0x7f.0.0.1:{port}/img.png"),
        format!("http://[::ffff:127.0.0.1]:{port}/img.png"),
        format!("http://localhost:{port}/img.png"),
    ] {
        let (status, json) = env.scan_url(&url).await;
        assert_eq!(status, 422, "{url}: {json}");
        assert_eq!(error_code(&json), "url_rejected", "{url}: {json}");
    }
    assert_eq!(
        server.hits("/img.png"),
        0,
        "no request may reach the private server"
    );
    assert!(env.redis_keys().await.is_empty());
    env.cleanup().await;
}

#[tokio::test]
async fn a_public_url_redirecting_to_loopback_is_refused() {
    let server = HttpServer::start(HashMap::new()).await;
    let port = server.addr.port();
    drop(server);
    // The "public" host is the test server, reached through a fixed mapping (trusted like
    // curl's --resolve); its redirects point at loopback, by literal and by name.
    let target = HttpServer::start(HashMap::from([
        ("/img.png".to_owned(), Answer::ok(png(2), "image/png")),
        (
            "/to-literal".to_owned(),
            Answer::redirect(&format!("http://127.0.0.1:{port}/img.png")),
        ),
        (
            "/to-name".to_owned(),
            Answer::redirect(&format!("http://localhost:{port}/img.png")),
        ),
        (
            "/to-metadata".to_owned(),
            Answer::redirect("http://169.254.169.254/latest/meta-data/"),
        ),
    ]))
    .await;
    let env = strict_env(
        "redirect",
        &[("images.example.com", &target.addr.ip().to_string())],
    )
    .await;
    let public = |path: &str| format!("http://images.example.com:{}{path}", target.addr.port());

    // The mapping itself works: a direct image from the "public" host is accepted.
    let (status, json) = env.scan_url(&public("/img.png")).await;
    assert_eq!(status, 200, "{json}");
    for path in ["/to-literal", "/to-name", "/to-metadata"] {
        let (status, json) = env.scan_url(&public(path)).await;
        assert_eq!(status, 422, "{path}: {json}");
        assert_eq!(error_code(&json), "url_rejected", "{path}: {json}");
    }
    assert_eq!(
        target.hits("/img.png"),
        1,
        "only the direct fetch reached the image"
    );
    env.cleanup().await;
}

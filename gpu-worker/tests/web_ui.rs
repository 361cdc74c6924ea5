//! The web page in a real browser (headless Chromium from Debian, over WebDriver), on a real
//! gateway, worker, RabbitMQ and Redis: the six demo photos uploaded through the page's file
//! input are all shown `done`, each with as many face boxes as the API has faces, a match shows
//! the matching face's thumbnail, and clicking it opens the matched image. A screenshot is left
//! in `target/ui-test/`; a failure names the page's own errors. With keys on, the page asks for
//! one on the first 401, keeps it in the tab's sessionStorage only, and still works at a
//! phone's width.

use std::time::Duration;

use facematch_testkit::{
    System,
    browser::Browser,
    paths::{demo_path, workspace},
    within,
};
use serde_json::{Value, json};

const DEMO_IMAGES: u32 = 6;

/// What went wrong in the page, for a failure message.
async fn page_errors(browser: &Browser) -> Value {
    browser
        .execute(
            "return window.facematchErrors || ['errors.js did not run'];",
            vec![],
        )
        .await
}

/// Saves a screenshot under `target/ui-test/`; its path.
async fn screenshot(browser: &Browser, name: &str) -> String {
    let dir = workspace().join("target/ui-test");
    std::fs::create_dir_all(&dir).expect("target/ui-test");
    let path = dir.join(name);
    std::fs::write(&path, browser.screenshot().await).expect("write screenshot");
    path.display().to_string()
}

/// Waits for `script`; on timeout saves a screenshot and fails with the page's errors.
async fn wait_or_fail(browser: &Browser, what: &str, script: &str, timeout: Duration) -> Value {
    if let Some(value) = browser.wait_for(script, timeout).await {
        return value;
    }
    let shot = screenshot(browser, "failure.png").await;
    let rows = browser
        .execute(
            "return [...document.querySelectorAll('#image-list li')].map(li => li.innerText);",
            vec![],
        )
        .await;
    panic!(
        "{what} within {timeout:?}; page errors: {}; rows: {rows}; screenshot: {shot}",
        page_errors(browser).await
    );
}

/// Opens the page at `path` of the gateway and waits until its modules have run.
async fn open_page(browser: &Browser, sys: &System, path: &str) {
    browser.goto(&format!("{}{path}", sys.base_url())).await;
    wait_or_fail(
        browser,
        "the page loads its modules",
        "return document.readyState === 'complete' && window.facematchErrors !== undefined
           && !!document.getElementById('file-input');",
        Duration::from_secs(10),
    )
    .await;
}

/// Waits until the page's first (only) image row is `done`; its hash.
async fn first_row_done(browser: &Browser, what: &str) -> String {
    let hash = wait_or_fail(
        browser,
        what,
        "const row = document.querySelector('#image-list li');
         return !!row && row.dataset.state === 'done' && row.dataset.hash;",
        Duration::from_secs(120),
    )
    .await;
    hash.as_str().expect("hash").to_owned()
}

/// Opens image `hash` in the viewer by clicking its row; the number of face boxes drawn.
async fn boxes_of(browser: &Browser, hash: &str) -> u64 {
    let row = browser
        .find(&format!("#image-list li[data-hash='{hash}'] button"))
        .await;
    browser.click(&row).await;
    let ready = format!(
        "const v = document.getElementById('viewer');
         return v.dataset.hash === '{hash}' && v.dataset.ready === 'true'
           && document.querySelectorAll('#overlay rect.face-box').length;"
    );
    // `0` boxes reads as "not yet": every demo photo has faces.
    wait_or_fail(
        browser,
        "the viewer shows the image",
        &ready,
        Duration::from_secs(20),
    )
    .await
    .as_u64()
    .expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_scans_the_demo_photos_and_shows_their_faces_and_matches() {
    within(async {
        let mut sys = System::new("webui").await;
        sys.serve().await;
        let worker = sys.start_worker(sys.worker_args(4));
        let browser = Browser::start(1280, 1700).await;
        open_page(&browser, &sys, "/ui").await;

        let paths: Vec<String> = (1..=DEMO_IMAGES)
            .map(|n| {
                let path = demo_path(n).canonicalize().expect("demo photo");
                path.display().to_string()
            })
            .collect();
        eprintln!(
            "web_ui: the page is loaded; uploading {} photos",
            paths.len()
        );
        let input = browser.find("#file-input").await;
        browser.send_keys(&input, &paths.join("\n")).await;
        let all_done = format!(
            "const rows = [...document.querySelectorAll('#image-list li')];
             return rows.length === {DEMO_IMAGES} && rows.every(r => r.dataset.state === 'done')
               && rows.map(r => r.dataset.hash);"
        );
        eprintln!("web_ui: the files are given to the page");
        let hashes = wait_or_fail(
            &browser,
            "every uploaded photo is done",
            &all_done,
            Duration::from_secs(180),
        )
        .await;
        let hashes: Vec<String> = serde_json::from_value(hashes).expect("hashes");
        let progress = browser
            .execute(
                "return document.getElementById('progress').textContent;",
                vec![],
            )
            .await;
        assert_eq!(progress, json!("6 of 6 sent · 6 done"), "progress line");

        // Every photo: as many boxes as the API has faces.
        for hash in &hashes {
            let api = sys.get_json(&format!("/images/{hash}")).await;
            let faces = api["face_count"].as_u64().expect("face count");
            assert!(faces > 0, "{api}");
            assert_eq!(boxes_of(&browser, hash).await, faces, "boxes of {hash}");
        }

        // A photo with a match shows the matching face's thumbnail; clicking it opens the
        // matched image.
        let mut opened = None;
        for hash in &hashes {
            boxes_of(&browser, hash).await;
            let thumb =
                "const img = document.querySelector('#face-list button.match img.match-thumb');
                 return !!img && img.complete && img.naturalWidth > 0
                   && img.closest('button').dataset.hash;";
            let Some(other) = browser.wait_for(thumb, Duration::from_secs(5)).await else {
                continue;
            };
            let other = other.as_str().expect("hash").to_owned();
            let button = browser.find("#face-list button.match").await;
            browser.click(&button).await;
            let shown = format!(
                "const v = document.getElementById('viewer');
                 return v.dataset.hash === '{other}' && v.dataset.ready === 'true';"
            );
            wait_or_fail(
                &browser,
                "the matched image opens",
                &shown,
                Duration::from_secs(20),
            )
            .await;
            opened = Some((hash.clone(), other));
            break;
        }
        let (from, to) = opened.expect("some demo photo shows a match thumbnail");
        let api = sys.get_json(&format!("/match/{from}/details")).await;
        assert!(
            api.as_array()
                .expect("details")
                .iter()
                .any(|m| m["hash"] == to.as_str()),
            "{to} is one of {from}'s matches: {api}"
        );

        browser.execute("window.scrollTo(0, 0);", vec![]).await;
        let shot = screenshot(&browser, "page.png").await;
        let errors = page_errors(&browser).await;
        assert_eq!(errors, json!([]), "the page's errors (screenshot {shot})");
        browser.quit().await;
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_on_the_page_asks_for_one_keeps_it_in_the_tab_and_never_in_an_address() {
    within(async {
        let (mut sys, admin) = System::secured("webui-keys").await;
        let key = sys.create_key(&admin, "default", &["scan", "read"]).await;
        sys.serve().await;
        let worker = sys.start_worker(sys.worker_args(4));
        let browser = Browser::start(390, 844).await; // a phone's width
        open_page(&browser, &sys, "/ui/").await;
        let photo = demo_path(3).canonicalize().expect("demo photo");
        let input = browser.find("#file-input").await;
        browser
            .send_keys(&input, &photo.display().to_string())
            .await;

        // The upload's 401 opens the key dialog; the upload goes through once a key is given.
        wait_or_fail(
            &browser,
            "the key dialog opens",
            "return document.getElementById('key-dialog').open;",
            Duration::from_secs(20),
        )
        .await;
        let field = browser.find("#key-input").await;
        browser.send_keys(&field, &key.key).await;
        browser.click(&browser.find("#key-save").await).await;
        let hash = first_row_done(&browser, "the photo is done with the key").await;
        // Thumbnails come with the key too (fetched, not linked).
        let row = browser.find("#image-list li button").await;
        browser.click(&row).await;
        wait_or_fail(
            &browser,
            "the face thumbnails load with the key",
            "const imgs = [...document.querySelectorAll('#face-list img.face-thumb')];
             return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);",
            Duration::from_secs(20),
        )
        .await;
        let kept = browser
            .execute(
                "return [sessionStorage.getItem('facematch.key'), localStorage.length,
                         location.href, document.cookie];",
                vec![],
            )
            .await;
        assert_eq!(kept[0], json!(key.key), "the key is kept in the tab");
        assert_eq!(kept[1], json!(0), "nothing in localStorage");
        let address = kept[2].as_str().expect("href");
        assert!(
            !address.contains(&key.key),
            "never in the address: {address}"
        );
        assert_eq!(kept[3], json!(""), "no cookie");
        let thumbs: Vec<Value> = serde_json::from_value(
            browser
                .execute(
                    "return [...document.querySelectorAll('img')].map(i => i.src);",
                    vec![],
                )
                .await,
        )
        .expect("srcs");
        assert!(
            thumbs
                .iter()
                .all(|s| !s.as_str().unwrap_or("").contains(&key.key)),
            "no picture address carries the key"
        );
        let width = browser
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await;
        assert!(
            width[0].as_u64() <= width[1].as_u64(),
            "no sideways scroll at a phone's width (page, window): {width}"
        );
        screenshot(&browser, "phone-with-key.png").await;
        assert_eq!(page_errors(&browser).await, json!([]), "the page's errors");
        assert_eq!(
            sys.get_as(&key.key, &format!("/images/{hash}"))
                .await
                .status,
            200
        );
        browser.quit().await;
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}

/// Serves `bytes` as `image/jpeg` to every request on 127.0.0.1 (random port); its address.
async fn serve_photo(bytes: Vec<u8>) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let bytes = bytes.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    bytes.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&bytes).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanned_url_is_drawn_from_that_url_with_its_boxes() {
    within(async {
        let mut sys = System::new("webui-url").await;
        sys.serve().await;
        let worker = sys.start_worker(sys.worker_args(4));
        let photo = serve_photo(facematch_testkit::paths::demo(5)).await;
        let url = format!("http://{photo}/party.jpg");
        let browser = Browser::start(1280, 1000).await;
        open_page(&browser, &sys, "/ui/").await;
        browser
            .send_keys(&browser.find("#url-text").await, &url)
            .await;
        browser
            .click(&browser.find("#url-form button[type=submit]").await)
            .await;
        let hash = first_row_done(&browser, "the URL is done").await;
        let faces = sys.get_json(&format!("/images/{hash}")).await["face_count"]
            .as_u64()
            .expect("faces");
        assert_eq!(boxes_of(&browser, &hash).await, faces);
        let drawn = wait_or_fail(
            &browser,
            "the photo is drawn from its URL",
            "const img = document.getElementById('photo');
             return !img.hidden && img.complete && img.naturalWidth > 0 && img.src;",
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(drawn, json!(url));
        assert_eq!(page_errors(&browser).await, json!([]), "the page's errors");
        browser.quit().await;
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}

//! Files: upload (multipart and upload URL), attach, download with ranges and ETags,
//! thumbnails, refusals that keep nothing, and the collector. Every scenario runs on the
//! local folder (SQLite and Postgres) and on a real S3 API (moto, `SYNCCHAT_TEST_S3_ENDPOINT`).

use std::io::Cursor;
use std::time::Duration;

use serde_json::{Value, json};
use syncchat_test_support::metric_sum;

use crate::helpers::{Backend, TestApp, TestUser, spawn_app_with};

const SEND: &str = "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq clientMessageId \
    attachments { id name contentType size width height sha256 url thumbnailUrl } } }";

/// The server flags for an S3 store in a fresh bucket on the test S3 endpoint; `None` when
/// it is not configured (a failure under `SYNCCHAT_TEST_REQUIRE_ALL=1`).
pub async fn s3_args() -> Option<Vec<String>> {
    let endpoint = syncchat_test_support::env_or_skip(syncchat_test_support::S3_ENDPOINT, "the S3 runs")?;
    assert!(
        std::env::var("AWS_ACCESS_KEY_ID").is_ok() && std::env::var("AWS_SECRET_ACCESS_KEY").is_ok(),
        "the S3 run needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any value for moto)"
    );
    let bucket = format!("t{}", uuid::Uuid::now_v7().simple());
    let created = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.expect("create bucket");
    assert!(created.status().is_success(), "creating bucket {bucket}: {}", created.status());
    Some(vec!["--files-url".into(), format!("s3://{bucket}/files"), "--s3-endpoint".into(), endpoint])
}

#[derive(Clone, Copy, Debug)]
pub enum Store {
    SqliteLocal,
    PostgresLocal,
    SqliteS3,
}

pub async fn spawn_files_app(store: Store, extra: &[&str]) -> Option<TestApp> {
    let mut args: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    let backend = match store {
        Store::SqliteLocal => Backend::Sqlite,
        Store::PostgresLocal => Backend::Postgres,
        Store::SqliteS3 => {
            args.extend(s3_args().await?);
            Backend::Sqlite
        }
    };
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_app_with(backend, &refs).await
}

/// Declares each scenario once per file store.
macro_rules! on_file_stores {
    ($($name:ident),* $(,)?) => {
        mod local_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::Store::SqliteLocal).await; }
            )*
        }
        mod local_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::Store::PostgresLocal).await; }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::Store::SqliteS3).await; }
            )*
        }
    };
}

on_file_stores!(
    images_upload_attach_and_download_with_ranges_etags_and_thumbnails,
    refused_uploads_keep_nothing,
    graphql_clients_upload_through_a_signed_url,
    the_collector_removes_orphans_but_keeps_shared_bytes,
);

/// A PNG with a gradient, `w`×`h`.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 7) as u8]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png).expect("encode png");
    out.into_inner()
}

async fn upload(app: &TestApp, user: &TestUser, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str("image/png").expect("mime");
    let form = reqwest::multipart::Form::new().part("file", part);
    let resp = app
        .client
        .post(app.url("/api/v1/files"))
        .bearer_auth(&user.token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, user: &TestUser, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.get(app.url(path)).bearer_auth(&user.token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("get")
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

async fn stored(app: &TestApp) -> u64 {
    app.services.files.storage_usage().await.expect("storage usage").0
}

async fn images_upload_attach_and_download_with_ranges_etags_and_thumbnails(store: Store) {
    let Some(app) = spawn_files_app(store, &[]).await else { return };
    let (ann, bob, cat) = (app.register("ann").await, app.register("bob").await, app.register("cat").await);
    let conv = app.conversation(&ann, &[&bob], None).await;
    let bytes = png(800, 600);
    let (status, file) = upload(&app, &ann, "../holiday photo.png", bytes.clone()).await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(file["contentType"], "image/png");
    assert_eq!(file["name"], "holiday photo.png", "folders are dropped from names");
    assert_eq!(file["size"], bytes.len());
    assert_eq!((file["width"].as_i64(), file["height"].as_i64()), (Some(800), Some(600)));
    let id = file["id"].as_str().expect("id").to_owned();
    let sha = file["sha256"].as_str().expect("sha").to_owned();

    // Attached through GraphQL; a retry with the same client id is the same message.
    let input =
        json!({"input": {"conversationId": conv, "body": "look", "clientMessageId": "c1", "attachmentIds": [id]}});
    let sent = app.gql_ok(Some(&ann.token), SEND, input.clone()).await;
    assert_eq!(sent["sendMessage"]["attachments"][0]["id"], id.as_str());
    assert_eq!(sent["sendMessage"]["attachments"][0]["url"], format!("/api/v1/files/{id}"));
    let again = app.gql_ok(Some(&ann.token), SEND, input).await;
    assert_eq!(again["sendMessage"]["id"], sent["sendMessage"]["id"], "idempotent attach");
    assert_eq!(again["sendMessage"]["attachments"][0]["id"], id.as_str());
    // A file attached once cannot be attached again, nor can someone else's.
    let reuse = json!({"input": {"conversationId": conv, "body": "again", "attachmentIds": [id]}});
    assert_eq!(crate::helpers::gql_code(&app.gql(Some(&ann.token), SEND, reuse).await), "NOT_FOUND");
    let (_, bobs) = upload(&app, &bob, "b.png", png(10, 10)).await;
    let theirs = json!({"input": {"conversationId": conv, "body": "x", "attachmentIds": [bobs["id"]]}});
    assert_eq!(crate::helpers::gql_code(&app.gql(Some(&ann.token), SEND, theirs).await), "NOT_FOUND");
    let many: Vec<String> = (0..11).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let too_many = json!({"input": {"conversationId": conv, "body": "x", "attachmentIds": many}});
    assert_eq!(crate::helpers::gql_code(&app.gql(Some(&ann.token), SEND, too_many).await), "BAD_USER_INPUT");
    // History over REST carries the attachment too.
    let (_, history) = app.rest("GET", &format!("/conversations/{conv}/messages"), Some(&bob.token), None).await;
    assert_eq!(history["items"][0]["attachments"][0]["sha256"], sha.as_str());

    // bob, a participant, downloads it whole, in ranges and conditionally.
    let path = format!("/api/v1/files/{id}");
    let full = get(&app, &bob, &path, &[]).await;
    assert_eq!(full.status(), 200);
    let etag = header(&full, "etag");
    assert_eq!(etag, format!("\"{sha}\""));
    assert_eq!(header(&full, "content-type"), "image/png");
    assert!(header(&full, "cache-control").starts_with("private, max-age="));
    assert!(header(&full, "content-disposition").contains("filename=\"holiday photo.png\""));
    assert_eq!(header(&full, "accept-ranges"), "bytes");
    assert_eq!(full.bytes().await.expect("body").as_ref(), bytes.as_slice());
    let part = get(&app, &bob, &path, &[("range", "bytes=8-23")]).await;
    assert_eq!(part.status(), 206);
    assert_eq!(header(&part, "content-range"), format!("bytes 8-23/{}", bytes.len()));
    assert_eq!(part.bytes().await.expect("body").as_ref(), &bytes[8..24]);
    let tail = get(&app, &bob, &path, &[("range", "bytes=-5")]).await;
    assert_eq!(tail.bytes().await.expect("body").as_ref(), &bytes[bytes.len() - 5..]);
    let beyond = get(&app, &bob, &path, &[("range", &format!("bytes={}-", bytes.len()))]).await;
    assert_eq!(beyond.status(), 416);
    let cached = get(&app, &bob, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(cached.status(), 304);
    assert!(cached.bytes().await.expect("body").is_empty());

    // cat is no participant and did not upload it: it does not exist for cat.
    let denied = get(&app, &cat, &path, &[]).await;
    assert_eq!(denied.status(), 404);
    let problem: Value = denied.json().await.expect("problem");
    assert_eq!(problem["code"], "NOT_FOUND");

    // The thumbnail is made in the background.
    let mut thumb = None;
    for _ in 0..100 {
        let resp = get(&app, &bob, &format!("/api/v1/files/{id}/thumbnail"), &[]).await;
        if resp.status() == 200 {
            thumb = Some((header(&resp, "content-type"), resp.bytes().await.expect("thumb")));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (thumb_type, thumb) = thumb.expect("a thumbnail within 10 s");
    assert_eq!(thumb_type, "image/jpeg");
    let decoded = image::load_from_memory(&thumb).expect("a real image");
    assert_eq!((decoded.width(), decoded.height()), (320, 240));
    let (_, history) = app.rest("GET", &format!("/conversations/{conv}/messages"), Some(&bob.token), None).await;
    assert_eq!(history["items"][0]["attachments"][0]["thumbnailUrl"], format!("/api/v1/files/{id}/thumbnail"));

    let metrics = app.metrics().await;
    assert!(metrics.lines().any(|l| l.starts_with("syncchat_file_uploads_total{") && l.contains("multipart")));
    assert!(metrics.contains("syncchat_file_downloads_total{"));
}

async fn refused_uploads_keep_nothing(store: Store) {
    let Some(app) = spawn_files_app(store, &["--max-upload-bytes", "100000"]).await else { return };
    let ann = app.register("ann").await;
    assert_eq!(stored(&app).await, 0);

    // Over the limit: 413 with BAD_USER_INPUT, streamed past the first part.
    let (status, problem) = upload(&app, &ann, "big.txt", vec![b'a'; 150_000]).await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(problem["code"], "BAD_USER_INPUT");
    // An executable named .png: its bytes say what it is.
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x3e, 0, 1, 0, 0, 0];
    elf.extend(std::iter::repeat_n(0u8, 4000));
    let (status, problem) = upload(&app, &ann, "cute.png", elf).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["code"], "BAD_USER_INPUT");
    assert!(problem["detail"].as_str().unwrap_or_default().contains("not accepted"), "{problem}");
    // No part named `file`.
    let form = reqwest::multipart::Form::new().text("other", "x");
    let resp =
        app.client.post(app.url("/api/v1/files")).bearer_auth(&ann.token).multipart(form).send().await.expect("post");
    assert_eq!(resp.status(), 400);
    // Anonymous.
    let part = reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("a.txt");
    let resp = app
        .client
        .post(app.url("/api/v1/files"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 401);

    assert_eq!(stored(&app).await, 0, "nothing refused was kept");
    // An empty file is not refused: it is an empty text file.
    let (status, empty) = upload(&app, &ann, "empty.txt", Vec::new()).await;
    assert_eq!(
        (status, empty["contentType"].as_str(), empty["size"].as_i64()),
        (200, Some("text/plain"), Some(0)),
        "{empty}"
    );
    let metrics = app.metrics().await;
    let rejected =
        |reason: &str| metric_sum(&metrics, "syncchat_file_rejections_total", &[&format!("reason=\"{reason}\"")]);
    assert!(rejected("too_large") >= 1.0 && rejected("type_not_allowed") >= 1.0);

    // Just under the limit is fine.
    let (status, file) = upload(&app, &ann, "ok.txt", vec![b'a'; 99_000]).await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(file["contentType"], "text/plain");
}

async fn graphql_clients_upload_through_a_signed_url(store: Store) {
    let Some(app) = spawn_files_app(store, &[]).await else { return };
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let conv = app.conversation(&ann, &[&bob], None).await;
    let ticket = app
        .gql_ok(
            Some(&ann.token),
            "mutation { createUploadUrl(fileName: \"notes.pdf\") { uploadUrl expiresAt maxBytes } }",
            json!({}),
        )
        .await;
    let url = ticket["createUploadUrl"]["uploadUrl"].as_str().expect("url").to_owned();
    assert_eq!(ticket["createUploadUrl"]["maxBytes"], 26_214_400);
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec();
    let resp = app.client.put(app.url(&url)).body(pdf.clone()).send().await.expect("put");
    assert_eq!(resp.status(), 200);
    let file: Value = resp.json().await.expect("attachment");
    assert_eq!((file["name"].as_str(), file["contentType"].as_str()), (Some("notes.pdf"), Some("application/pdf")));
    // The URL is for one file: a second use is refused and stores nothing.
    let before = stored(&app).await;
    let again = app.client.put(app.url(&url)).body(b"another file".to_vec()).send().await.expect("put");
    assert_eq!(again.status(), 409);
    let problem: Value = again.json().await.expect("problem");
    assert_eq!(problem["code"], "CONFLICT");
    assert_eq!(stored(&app).await, before);
    // A refused upload (a type that is not accepted) does not use the URL up.
    let retry = app
        .gql_ok(Some(&ann.token), "mutation { createUploadUrl(fileName: \"b.txt\") { uploadUrl } }", json!({}))
        .await;
    let retry = retry["createUploadUrl"]["uploadUrl"].as_str().expect("url").to_owned();
    let resp =
        app.client.put(app.url(&retry)).body(vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0]).send().await.expect("put");
    assert_eq!(resp.status(), 400);
    let resp = app.client.put(app.url(&retry)).body(b"now with bytes".to_vec()).send().await.expect("put");
    assert_eq!(resp.status(), 200, "the URL still works after a refused upload");
    let mut ws = crate::ws_client::WsClient::signed_in(&app, &bob.token).await;
    ws.subscribe(
        "m",
        "subscription($c: UUID!) { messageAdded(conversationId: $c) { body attachments { name contentType size } } }",
        json!({"c": conv}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let input = json!({"input": {"conversationId": conv, "body": "the notes", "attachmentIds": [file["id"]]}});
    let sent = app.gql_ok(Some(&ann.token), SEND, input).await;
    assert_eq!(sent["sendMessage"]["attachments"][0]["contentType"], "application/pdf");
    let live = ws.next_data("m").await;
    assert_eq!(
        live["messageAdded"]["attachments"],
        json!([{"name": "notes.pdf", "contentType": "application/pdf", "size": pdf.len()}]),
        "subscribers get the attachments with the message"
    );
    let got = get(&app, &bob, &format!("/api/v1/files/{}", file["id"].as_str().unwrap_or_default()), &[]).await;
    assert!(header(&got, "content-disposition").starts_with("inline"));
    assert_eq!(got.bytes().await.expect("bytes").as_ref(), pdf.as_slice());

    // An access token is not an upload URL, and a tampered URL is refused.
    for token in [ann.token.clone(), format!("{}x", url.rsplit('/').next().unwrap_or_default())] {
        let resp = app
            .client
            .put(app.url(&format!("/api/v1/files/uploads/{token}")))
            .body(b"hello".to_vec())
            .send()
            .await
            .expect("put");
        assert_eq!(resp.status(), 401);
    }
    // After logout the URL no longer works.
    let (status, _) = app.rest("POST", "/auth/logout", Some(&ann.token), None).await;
    assert!(status == 200 || status == 204, "{status}");
    let resp = app.client.put(app.url(&url)).body(b"hello".to_vec()).send().await.expect("put");
    assert_eq!(resp.status(), 401);
}

async fn the_collector_removes_orphans_but_keeps_shared_bytes(store: Store) {
    let Some(app) = spawn_files_app(store, &["--files-orphan-grace-secs", "0"]).await else { return };
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let conv = app.conversation(&ann, &[&bob], None).await;
    let shared = b"the same bytes, twice\n".to_vec();
    let (_, kept) = upload(&app, &ann, "a.txt", shared.clone()).await;
    let (_, twin) = upload(&app, &ann, "b.txt", shared.clone()).await;
    assert_eq!(kept["sha256"], twin["sha256"]);
    let (_, lonely) = upload(&app, &ann, "c.txt", b"nobody attaches me\n".to_vec()).await;
    assert_eq!(stored(&app).await, 2, "identical bytes are stored once");
    let (status, msg) = app
        .rest(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some(&ann.token),
            Some(json!({"body": "file", "attachmentIds": [kept["id"]]})),
        )
        .await;
    assert_eq!(status, 200, "{msg}");

    tokio::time::sleep(Duration::from_millis(20)).await;
    let collected = app.services.files.collect_orphans().await.expect("collect");
    assert_eq!(collected, 2, "the twin and the lonely upload");
    assert_eq!(stored(&app).await, 1, "the lonely bytes are gone, the shared ones stay");
    let kept_path = format!("/api/v1/files/{}", kept["id"].as_str().unwrap_or_default());
    let resp = get(&app, &bob, &kept_path, &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.expect("bytes").as_ref(), shared.as_slice());
    for orphan in [&twin, &lonely] {
        let resp = get(&app, &ann, &format!("/api/v1/files/{}", orphan["id"].as_str().unwrap_or_default()), &[]).await;
        assert_eq!(resp.status(), 404);
    }

    // Deleting the message lets its file go.
    let (status, _) = app
        .rest("DELETE", &format!("/messages/{}", msg["id"].as_str().unwrap_or_default()), Some(&ann.token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(get(&app, &bob, &kept_path, &[]).await.status(), 404);
    assert_eq!(stored(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_s3_downloads_can_redirect_to_a_presigned_url() {
    let Some(app) = spawn_files_app(Store::SqliteS3, &["--files-redirect", "presigned"]).await else { return };
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let conv = app.conversation(&ann, &[&bob], None).await;
    let bytes = png(40, 30);
    let (_, file) = upload(&app, &ann, "small.png", bytes.clone()).await;
    let (status, _) = app
        .rest(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some(&ann.token),
            Some(json!({"body": "pic", "attachmentIds": [file["id"]]})),
        )
        .await;
    assert_eq!(status, 200);
    let no_follow = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let resp = no_follow
        .get(app.url(&format!("/api/v1/files/{}", file["id"].as_str().unwrap_or_default())))
        .bearer_auth(&bob.token)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 302);
    let location = header(&resp, "location");
    assert!(location.contains("X-Amz-Signature="), "a presigned URL: {location}");
    // The bucket serves the bytes to whoever holds the URL, without SyncChat.
    let direct = reqwest::get(&location).await.expect("follow");
    assert_eq!(direct.status(), 200);
    assert_eq!(direct.bytes().await.expect("bytes").as_ref(), bytes.as_slice());
    // Still only for participants: cat gets no URL.
    let cat = app.register("cat").await;
    let resp = get(&app, &cat, &format!("/api/v1/files/{}", file["id"].as_str().unwrap_or_default()), &[]).await;
    assert_eq!(resp.status(), 404);
}

/// Upload URLs work once, on any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_url_stores_one_file_across_nodes() {
    let Some(nodes) = crate::helpers::spawn_cluster(2, &[]).await else { return };
    let (a, b) = (&nodes[0], &nodes[1]);
    let ann = a.register("ann").await;
    let ticket =
        a.gql_ok(Some(&ann.token), "mutation { createUploadUrl(fileName: \"a.txt\") { uploadUrl } }", json!({})).await;
    let url = ticket["createUploadUrl"]["uploadUrl"].as_str().expect("url").to_owned();
    let resp = b.client.put(b.url(&url)).body(b"first".to_vec()).send().await.expect("put");
    assert_eq!(resp.status(), 200, "the first use, on node B");
    for node in [a, b] {
        let resp = node.client.put(node.url(&url)).body(b"second".to_vec()).send().await.expect("put");
        assert_eq!(resp.status(), 409);
        let body: Value = resp.json().await.expect("problem");
        assert_eq!(body["code"], "CONFLICT");
    }
    assert_eq!(crate::helpers::count(a, "SELECT COUNT(*) AS n FROM attachments").await, 1, "one file stored");
}

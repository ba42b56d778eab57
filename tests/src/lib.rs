//! Shared harness of the end-to-end tests: a real `ferry-server` (API and embedded store) on
//! `127.0.0.1:0` in a temporary data dir, an API client, and a store client that signs with the
//! engine's SigV4 signer exactly as the uploader does.

mod account;
pub mod proxy;

use std::time::Duration;

use ferry_engine::dialect::s3;
use ferry_engine::dialect::{SigningCredentials, UnsignedRequest, key_path};
use ferry_engine::secret::Secret;
use ferry_protocol::{ErrorBody, Grant, Role, Session, SignIn};
use ferry_server::{ServeOptions, Server};
use md5::Digest;
use serde_json::Value;
use time::OffsetDateTime;

pub mod native_store;
pub mod network;
pub mod raw_http;
pub mod s3xml;
pub mod server_process;

pub use account::{Alice, ferry_as, succeeds};

/// Every HTTP request of a test gives up after this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .expect("HTTP client")
}

/// A server in a temporary data dir; stopped when the test ends (its runtime goes away).
pub struct TestServer {
    /// The running server.
    pub server: Server,
    /// Its data dir.
    pub dir: tempfile::TempDir,
    /// API base URL.
    pub api: String,
}

impl TestServer {
    /// Starts a server with default options.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` has changed the options.
    pub async fn start_with(adjust: impl FnOnce(&mut ServeOptions)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut options = ServeOptions::new(dir.path());
        adjust(&mut options);
        let server = Server::start(options).await.expect("server starts");
        let api = server.api_url();
        Self { server, dir, api }
    }

    /// Creates an account and returns its password.
    pub fn add_user(&self, name: &str, role: Role) -> String {
        let password = format!(
            "pw-{name}-{}",
            OffsetDateTime::now_utc().unix_timestamp_nanos()
        );
        self.server
            .accounts()
            .add(name, &password, role)
            .expect("add user");
        password
    }

    /// Signs in; the raw reply.
    pub async fn sign_in(&self, name: &str, password: &str) -> Reply {
        let body = SignIn {
            username: name.into(),
            password: password.into(),
            device: None,
        };
        Reply::from(
            http()
                .post(format!("{}/api/v1/sessions", self.api))
                .json(&body)
                .send()
                .await,
        )
        .await
    }

    /// Creates an account, signs in, and returns a client with its session.
    pub async fn user(&self, name: &str, role: Role) -> ApiClient {
        let password = self.add_user(name, role);
        let session: Session = self.sign_in(name, &password).await.json(201);
        ApiClient {
            http: http(),
            base: self.api.clone(),
            token: Some(session.token.clone()),
            session: Some(session),
        }
    }

    /// A client signed in as an existing account.
    pub async fn login(&self, name: &str, password: &str) -> ApiClient {
        let session: Session = self.sign_in(name, password).await.json(201);
        let mut client = self.anonymous();
        client.token = Some(session.token.clone());
        client.session = Some(session);
        client
    }

    /// Signs in as `name` and reads up to 500 rows of their history.
    pub async fn history(&self, name: &str, password: &str) -> ferry_protocol::UploadPage {
        let client = self.login(name, password).await;
        client.get("/api/v1/uploads?limit=500").await.json(200)
    }

    /// A client without a session.
    pub fn anonymous(&self) -> ApiClient {
        ApiClient {
            http: http(),
            base: self.api.clone(),
            token: None,
            session: None,
        }
    }
}

/// A status and body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as text.
    pub body: String,
}

impl Reply {
    /// The reply to a request (which must have reached the server).
    pub async fn from(result: reqwest::Result<reqwest::Response>) -> Self {
        let response = result.expect("request reaches the server");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        Self {
            status,
            headers,
            body,
        }
    }

    /// The body as `T`, after checking the status.
    pub fn json<T: serde::de::DeserializeOwned>(&self, status: u16) -> T {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// Asserts an API error and returns its code as on the wire.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        let body: ErrorBody =
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body));
        assert!(!body.message.is_empty());
        body.code.as_str().to_owned()
    }

    /// The S3 error code of an XML error body.
    pub fn s3_code(&self) -> String {
        s3xml::error_code(&self.body)
    }

    /// The XML body as `T`, after checking the status.
    pub fn xml<T: serde::de::DeserializeOwned>(&self, status: u16) -> T {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        s3xml::parse(&self.body)
    }
}

/// A client of the JSON API.
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    /// Bearer token, when signed in.
    pub token: Option<String>,
    /// The sign-in answer.
    pub session: Option<Session>,
}

impl ApiClient {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        Reply::from(
            self.request(reqwest::Method::POST, path)
                .json(body)
                .send()
                .await,
        )
        .await
    }

    /// POST with raw bytes as `application/json`.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Reply {
        Reply::from(
            self.request(reqwest::Method::POST, path)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await,
        )
        .await
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Reply {
        Reply::from(self.request(reqwest::Method::GET, path).send().await).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Reply {
        Reply::from(self.request(reqwest::Method::DELETE, path).send().await).await
    }

    /// A fresh default grant.
    pub async fn grant(&self) -> Grant {
        self.post("/api/v1/grants", &serde_json::json!({}))
            .await
            .json(201)
    }

    /// A grant that lives `secs`.
    pub async fn grant_for(&self, secs: u64) -> Grant {
        self.post(
            "/api/v1/grants",
            &serde_json::json!({ "ttl_seconds": secs }),
        )
        .await
        .json(201)
    }
}

/// How a store request presents its security token.
#[derive(Debug, Clone)]
pub enum Token {
    /// The grant's own token.
    Grant,
    /// No token at all.
    Missing,
    /// Another token.
    Other(String),
}

/// A store client signing with the engine's SigV4 signer.
pub struct StoreClient {
    http: reqwest::Client,
    /// The grant it signs with.
    pub grant: Grant,
    /// Token handling.
    pub token: Token,
    /// Secret override, to test a bad signature.
    pub secret: Option<String>,
}

/// Hex MD5.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5::Md5::digest(data))
}

/// Base64 MD5, as `Content-MD5` wants it.
pub fn md5_base64(data: &[u8]) -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        md5::Md5::digest(data),
    )
}

/// The multipart ETag S3 computes: MD5 of the parts' binary MD5s, dash, part count.
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut all = Vec::new();
    for part in parts {
        all.extend_from_slice(&md5::Md5::digest(part));
    }
    format!("{}-{}", md5_hex(&all), parts.len())
}

/// First `<tag>…</tag>` text of an XML body (parsed with quick-xml; entities resolved).
pub fn xml_value(xml: &str, tag: &str) -> Option<String> {
    xml_values(xml, tag).into_iter().next()
}

/// Every `<tag>…</tag>` text of an XML body, in order (parsed with quick-xml).
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    s3xml::texts(xml, tag)
}

impl StoreClient {
    /// A client for `grant`.
    pub fn new(grant: Grant) -> Self {
        Self {
            http: http(),
            grant,
            token: Token::Grant,
            secret: None,
        }
    }

    fn credentials(&self) -> SigningCredentials {
        let token = match &self.token {
            Token::Grant => Some(Secret::new(self.grant.security_token.clone())),
            Token::Missing => None,
            Token::Other(t) => Some(Secret::new(t.clone())),
        };
        SigningCredentials {
            access_key_id: self.grant.access_key_id.clone(),
            secret_access_key: Secret::new(
                self.secret
                    .clone()
                    .unwrap_or_else(|| self.grant.secret_access_key.clone()),
            ),
            security_token: token,
        }
    }

    /// URL of `key` (already encoded) in the grant's bucket, with a raw query.
    pub fn url(&self, key: &str, query: &str) -> String {
        let mut url = format!(
            "{}{}",
            self.grant.endpoint,
            key_path(&self.grant.bucket, key)
        );
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// The headers (`Authorization` and `Host` included) that sign `method url` in header
    /// mode, for a body whose SHA-256 is `payload` (or [`s3::UNSIGNED_PAYLOAD`]).
    pub fn sign_headers(
        &self,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
        payload: &str,
    ) -> Vec<(String, String)> {
        let request = UnsignedRequest {
            method: method.into(),
            url: url.to_owned(),
            headers,
        };
        let scope = s3::Scope {
            region: &self.grant.region,
            service: "s3",
            time: OffsetDateTime::now_utc(),
        };
        s3::sign(&request, &self.credentials(), &scope, payload)
            .expect("sign")
            .headers
    }

    /// Sends a request signed in header mode.
    pub async fn send_url(
        &self,
        method: &str,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Reply {
        let signed_headers = self.sign_headers(method, &url, headers, &s3::sha256_hex(&body));
        let mut builder = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            &url,
        );
        for (name, value) in &signed_headers {
            if !name.eq_ignore_ascii_case("host") {
                builder = builder.header(name, value);
            }
        }
        Reply::from(builder.body(body).send().await).await
    }

    /// The store's socket address (the grant's endpoint is `http://<ip>:<port>`).
    pub fn store_addr(&self) -> std::net::SocketAddr {
        self.grant
            .endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the endpoint is http://<ip>:<port>")
    }

    /// Sends a request by hand: signed for `signed_target` (path and query as the signer sees
    /// them) but sent with `wire_target` in the request line, exactly as written.
    pub async fn raw(
        &self,
        method: &str,
        signed_target: &str,
        wire_target: &str,
        headers: Vec<(String, String)>,
        body: &[u8],
    ) -> raw_http::RawReply {
        let url = format!("{}{signed_target}", self.grant.endpoint);
        let mut head = format!("{method} {wire_target} HTTP/1.1");
        let mut headers = self.sign_headers(method, &url, headers, &s3::sha256_hex(body));
        headers.push(("content-length".into(), body.len().to_string()));
        for (name, value) in headers {
            head.push_str(&format!("\r\n{name}: {value}"));
        }
        raw_http::exchange(self.store_addr(), &head, body).await
    }

    /// Sends a request to `key` with a raw query.
    pub async fn send(
        &self,
        method: &str,
        key: &str,
        query: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Reply {
        self.send_url(method, self.url(key, query), headers, body)
            .await
    }

    /// A presigned URL for `method` on `key`.
    pub fn presign(&self, method: &str, key: &str, expires: u64) -> String {
        let request = UnsignedRequest {
            method: method.into(),
            url: self.url(key, ""),
            headers: vec![],
        };
        let scope = s3::Scope {
            region: &self.grant.region,
            service: "s3",
            time: OffsetDateTime::now_utc(),
        };
        s3::presign(
            &request,
            &self.credentials(),
            &scope,
            s3::UNSIGNED_PAYLOAD,
            expires,
        )
        .expect("presign")
        .url
    }

    /// PutObject.
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Reply {
        self.send("PUT", key, "", vec![], body).await
    }

    /// HeadObject.
    pub async fn head(&self, key: &str) -> Reply {
        self.send("HEAD", key, "", vec![], vec![]).await
    }

    /// CreateMultipartUpload; the upload id.
    pub async fn create_multipart(&self, key: &str) -> String {
        let reply = self.send("POST", key, "uploads=", vec![], vec![]).await;
        reply.xml::<s3xml::Initiated>(200).upload_id
    }

    /// UploadPart.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Vec<u8>,
    ) -> Reply {
        self.send(
            "PUT",
            key,
            &format!("partNumber={number}&uploadId={upload_id}"),
            vec![],
            body,
        )
        .await
    }

    /// ListParts with optional paging.
    pub async fn list_parts(&self, key: &str, upload_id: &str, extra: &str) -> Reply {
        let mut query = format!("uploadId={upload_id}");
        if !extra.is_empty() {
            query = format!("{extra}&{query}");
        }
        self.send("GET", key, &query, vec![], vec![]).await
    }

    /// CompleteMultipartUpload with `(number, etag)` pairs as given.
    pub async fn complete(&self, key: &str, upload_id: &str, parts: &[(u32, String)]) -> Reply {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (number, etag) in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>\"{etag}\"</ETag></Part>"
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        self.send(
            "POST",
            key,
            &format!("uploadId={upload_id}"),
            vec![],
            xml.into_bytes(),
        )
        .await
    }

    /// AbortMultipartUpload.
    pub async fn abort(&self, key: &str, upload_id: &str) -> Reply {
        self.send(
            "DELETE",
            key,
            &format!("uploadId={upload_id}"),
            vec![],
            vec![],
        )
        .await
    }

    /// ListMultipartUploads with a raw extra query.
    pub async fn list_uploads(&self, extra: &str) -> Reply {
        let url = format!(
            "{}/{}?{}uploads=",
            self.grant.endpoint,
            self.grant.bucket,
            if extra.is_empty() {
                String::new()
            } else {
                format!("{extra}&")
            }
        );
        self.send_url("GET", url, vec![], vec![]).await
    }
}

/// A folder `name` made under `parent`, holding `count` files `f0000{suffix}`,
/// `f0001{suffix}`, …, each holding what `content` gives for its number.
pub fn folder_of(
    parent: &std::path::Path,
    name: &str,
    count: u64,
    suffix: &str,
    content: impl Fn(u64) -> Vec<u8>,
) -> std::path::PathBuf {
    let folder = parent.join(name);
    std::fs::create_dir(&folder).expect("a new folder");
    for i in 0..count {
        std::fs::write(folder.join(format!("f{i:04}{suffix}")), content(i)).expect("a file");
    }
    folder
}

/// Deterministic pseudo-random bytes (xorshift), so failures are reproducible.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Events an engine emitted, kept for assertions.
#[derive(Clone, Default)]
pub struct Recorder(pub std::sync::Arc<std::sync::Mutex<Vec<ferry_engine::events::Event>>>);

impl Recorder {
    /// A sink that records into this recorder.
    pub fn sink(&self) -> ferry_engine::events::EventSink {
        let events = self.0.clone();
        std::sync::Arc::new(move |event| {
            events.lock().unwrap_or_else(|p| p.into_inner()).push(event)
        })
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<ferry_engine::events::Event> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// An engine against `server` in `data_dir`, secrets in memory, signed in as `user`.
pub async fn engine(
    server: &TestServer,
    data_dir: &std::path::Path,
    user: &str,
    password: &str,
    adjust: impl FnOnce(&mut ferry_engine::EngineConfig),
) -> (ferry_engine::Engine, Recorder) {
    let recorder = Recorder::default();
    let mut config = ferry_engine::EngineConfig {
        data_dir: data_dir.to_owned(),
        server: server.api.clone(),
        keychain: std::sync::Arc::new(ferry_engine::keychain::MemoryKeychain::default()),
        events: recorder.sink(),
        transfer: ferry_engine::transfer::TransferSettings::default(),
        grant: Default::default(),
        device: "test-device".into(),
        token_server: None,
        network: Default::default(),
    };
    adjust(&mut config);
    let engine = ferry_engine::Engine::open(config).expect("engine opens");
    engine
        .sign_in(user, &Secret::new(password), "test-device")
        .await
        .expect("sign in");
    (engine, recorder)
}

/// The grant an engine asks for to speak `provider`'s dialect (signed with V4).
pub fn grant_in(provider: ferry_protocol::Provider) -> ferry_protocol::GrantRequest {
    ferry_protocol::GrantRequest {
        ttl_seconds: None,
        provider: Some(provider),
        signature_version: Some(ferry_protocol::SignatureVersion::V4),
    }
}

/// The ETag S3 gives a file uploaded with `part_size` parts (or one PUT below `threshold`).
pub fn expected_etag(data: &[u8], threshold: usize, part_size: usize) -> String {
    if data.len() < threshold {
        return md5_hex(data);
    }
    let parts: Vec<&[u8]> = data.chunks(part_size).collect();
    multipart_etag(&parts)
}

/// Reports a test's figures: printed, and appended as `figures <test>: <text>` to the file
/// `FERRY_FIGURES` names, if any (`cargo xtask soak` collects them into `docs/reliability.md`).
pub fn figures(test: &str, text: &str) {
    println!("figures {test}: {text}");
    if let Some(path) = std::env::var_os("FERRY_FIGURES") {
        use std::io::Write;
        let line = format!("figures {test}: {}\n", text.replace('\n', " "));
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(err) = written {
            eprintln!(
                "could not record figures in {}: {err}",
                path.to_string_lossy()
            );
        }
    }
}

/// Runs `future` with a deadline, so a hang fails the test instead of blocking CI.
pub async fn within<T>(secs: u64, what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
}

/// `target/<profile>/ferry`, next to the running test's executable in `deps/`.
pub fn ferry_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("ferry");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first",
        bin.display()
    );
    bin
}

//! The app server's JSON API as the engine calls it: one method per endpoint, errors mapped to
//! [`Error::Server`] with the server's stable code. A client may instead stand for a server that
//! only hands out credentials ([`TokenServer`]): then signing in and grants go to its token
//! endpoint, confirmations are not sent and history is this computer's own.

use crate::network::{Client, Network};
use std::time::Duration;

use ferry_protocol::{
    Confirmation, ErrorBody, ErrorCode, Grant, GrantRequest, Session as WireSession, SignIn,
    UploadPage, UploadRecord, User,
};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::token_server::TokenServer;

/// How long a session with a token server is taken to last: it has no sessions of its own, so
/// the credentials typed at sign-in stay in the keychain until sign-out or until the server
/// refuses them.
const TOKEN_SESSION: time::Duration = time::Duration::days(365);

/// A client of one app server.
#[derive(Clone)]
pub struct ApiClient {
    http: Client,
    base: String,
    tokens: Option<std::sync::Arc<TokenServer>>,
    reach: std::sync::Arc<Reach>,
}

/// Whether the server answered the last request (any answer counts; a network failure does
/// not), and who is told when that changes. The change and its event happen under one lock, so
/// events come in the order of the changes.
#[derive(Default)]
struct Reach {
    unreachable: std::sync::Mutex<bool>,
    told: std::sync::OnceLock<crate::events::EventSink>,
}

impl Reach {
    fn answered(&self, answered: bool) {
        let mut unreachable = self.unreachable.lock().unwrap_or_else(|p| p.into_inner());
        if *unreachable != answered {
            // No change: it answered before and does now, or failed before and does now.
            return;
        }
        *unreachable = !answered;
        if let Some(events) = self.told.get() {
            events(crate::events::Event::Connection { online: answered });
        }
    }
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish()
    }
}

impl ApiClient {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8480`); a request gives up
    /// after 60 s.
    pub fn new(base: &str) -> Result<Self> {
        Self::with_timeout(base, Duration::from_secs(60))
    }

    /// A client whose requests give up after `timeout`.
    pub fn with_timeout(base: &str, timeout: Duration) -> Result<Self> {
        Self::on(&Network::default(), base, timeout)
    }

    /// A client on `network` (its proxy, its CA certificates) whose requests give up after
    /// `timeout`.
    pub fn on(network: &Network, base: &str, timeout: Duration) -> Result<Self> {
        let http = Client::new(network, Duration::from_secs(10).min(timeout), move |b| {
            b.timeout(timeout)
        })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            tokens: None,
            reach: Default::default(),
        })
    }

    /// Whether the server answered the last request (true until a request fails to reach it).
    pub fn reachable(&self) -> bool {
        !*self
            .reach
            .unreachable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Tells `events` when the server stops answering or answers again
    /// ([`crate::events::Event::Connection`]); set once.
    pub fn tell(&self, events: crate::events::EventSink) {
        let _ = self.reach.told.set(events);
    }

    /// Sends `request`, noting whether the server answered.
    async fn reach(&self, request: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
        let sent = request.send().await;
        // A request that could not be built, or redirects without end, says nothing about
        // whether the server answers.
        match &sent {
            Ok(_) => self.reach.answered(true),
            Err(err) if !err.is_builder() && !err.is_redirect() => self.reach.answered(false),
            Err(_) => {}
        }
        sent
    }

    /// Whether the server answers — Ferry's: its `/healthz` says ok; a token server: any
    /// answer that is not a gateway's or proxy's failure — for "Test connection".
    pub async fn answers(&self) -> Result<()> {
        let operation = "reaching the app server";
        let url = match self.tokens {
            Some(_) => self.base.clone(),
            None => format!("{}/healthz", self.base),
        };
        let response = self
            .reach(self.http.current().get(url))
            .await
            .map_err(|source| Error::unreached(operation, &self.base, source))?;
        self.through_proxy(&response)?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let fine = match self.tokens {
            Some(_) => status.as_u16() < 500,
            None => status.is_success() && body.trim() == "ok",
        };
        match fine {
            true => Ok(()),
            false => Err(Error::Server {
                operation,
                code: ErrorCode::Unknown,
                message: format!(
                    "{} answered {status}, not the app server's health",
                    self.base
                ),
                status: status.as_u16(),
            }),
        }
    }

    /// The same client on another network (for "Test connection" with the settings as saved).
    pub fn on_network(&self, network: &Network, timeout: Duration) -> Result<Self> {
        let mut client = Self::on(network, &self.base, timeout)?;
        client.tokens = self.tokens.clone();
        Ok(client)
    }

    /// The HTTP client, whose network can change ([`ApiClient::on`] makes a new one instead).
    pub(crate) fn http(&self) -> &Client {
        &self.http
    }

    /// Refuses an answer that is the proxy's `407`, not the server's.
    fn through_proxy(&self, response: &reqwest::Response) -> Result<()> {
        match response.status() {
            reqwest::StatusCode::PROXY_AUTHENTICATION_REQUIRED => Err(Error::ProxyRefused {
                target: self.base.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// A client of a server that only hands out credentials; its token URL names it.
    pub fn for_token_server(
        network: &Network,
        server: TokenServer,
        timeout: Duration,
    ) -> Result<Self> {
        let mut client = Self::on(network, &server.token_url, timeout)?;
        client.base = server.token_url.clone();
        client.tokens = Some(std::sync::Arc::new(server));
        Ok(client)
    }

    /// Whether the server keeps history and takes confirmations (Ferry's API), or is a token
    /// server whose uploads are recorded on this computer only.
    pub fn keeps_history(&self) -> bool {
        self.tokens.is_none()
    }

    /// Refuses what only Ferry's API offers.
    fn ferry_api(&self) -> Result<()> {
        match self.tokens {
            None => Ok(()),
            Some(_) => Err(Error::LocalHistoryOnly),
        }
    }

    /// Asks a token server for credentials with `authorization`; a refusal reads as wrong
    /// credentials when signing in, as an ended session later.
    async fn fetch_tokens(
        &self,
        server: &TokenServer,
        authorization: &Secret,
        operation: &'static str,
        signing_in: bool,
    ) -> Result<Vec<u8>> {
        let network = |source| Error::unreached(operation, &self.base, source);
        let request = server.request(&self.http.current(), authorization);
        let response = self.reach(request).await.map_err(network)?;
        self.through_proxy(&response)?;
        let status = response.status().as_u16();
        let body = read_body(operation, response, TOKEN_ANSWER_LIMIT)
            .await
            .map_err(|err| err.into_error(network))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let code = match status {
            401 | 403 if signing_in => ErrorCode::InvalidCredentials,
            401 | 403 => ErrorCode::SessionExpired,
            429 => ErrorCode::RateLimited,
            _ => ErrorCode::Unknown,
        };
        Err(Error::Server {
            operation,
            code,
            message: crate::token_server::error_message(&body),
            status,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<T> {
        let network = |source| Error::unreached(operation, &self.base, source);
        let response = self.reach(request).await.map_err(network)?;
        self.through_proxy(&response)?;
        let status = response.status().as_u16();
        let body = read_body(operation, response, API_ANSWER_LIMIT)
            .await
            .map_err(|err| err.into_error(network))?;
        if (200..300).contains(&status) {
            let body = if body.is_empty() {
                b"null".as_slice()
            } else {
                &body
            };
            return serde_json::from_slice(body).map_err(|e| Error::Protocol {
                operation,
                detail: e.to_string(),
            });
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(err) => (err.code, err.message),
            Err(_) => (
                ErrorCode::Unknown,
                String::from_utf8_lossy(&body).chars().take(200).collect(),
            ),
        };
        Err(Error::Server {
            operation,
            code,
            message,
            status,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.base, ferry_protocol::API_PREFIX)
    }

    /// `POST /sessions`; for a token server, one credentials request with what was typed.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &Secret,
        device: &str,
    ) -> Result<WireSession> {
        if let Some(server) = &self.tokens {
            let authorization = server.authorization(username, password);
            let body = self
                .fetch_tokens(server, &authorization, "signing in", true)
                .await?;
            server.grant(&body, username)?;
            return Ok(WireSession {
                token: authorization.expose().to_owned(),
                expires_at: time::OffsetDateTime::now_utc() + TOKEN_SESSION,
                user: TokenServer::user(username),
            });
        }
        let body = SignIn {
            username: username.into(),
            password: password.expose().into(),
            device: Some(device.into()),
        };
        self.send(
            "signing in",
            self.http.current().post(self.url("/sessions")).json(&body),
        )
        .await
    }

    /// Whether a kept session still works: `GET /sessions/current`, or for a token server one
    /// credentials request (the server knows no users; the kept `user` stands).
    pub async fn check_session(&self, token: &Secret, user: &User) -> Result<User> {
        match &self.tokens {
            Some(server) => {
                let body = self
                    .fetch_tokens(server, token, "checking the session", false)
                    .await?;
                server.grant(&body, &user.name)?;
                Ok(user.clone())
            }
            None => self.whoami(token).await,
        }
    }

    /// `GET /sessions/current`.
    pub async fn whoami(&self, token: &Secret) -> Result<User> {
        self.ferry_api()?;
        self.send(
            "checking the session",
            self.http
                .current()
                .get(self.url("/sessions/current"))
                .bearer_auth(token.expose()),
        )
        .await
    }

    /// `DELETE /sessions/current` (nothing to end at a token server).
    pub async fn sign_out(&self, token: &Secret) -> Result<()> {
        if self.tokens.is_some() {
            return Ok(());
        }
        self.send::<()>(
            "signing out",
            self.http
                .current()
                .delete(self.url("/sessions/current"))
                .bearer_auth(token.expose()),
        )
        .await
    }

    /// `POST /grants`; from a token server, its answer read for `user` (the signed-in name).
    pub async fn grant_for(
        &self,
        token: &Secret,
        request: &GrantRequest,
        user: &str,
    ) -> Result<Grant> {
        match &self.tokens {
            Some(server) => {
                let operation = "getting storage credentials";
                let body = self.fetch_tokens(server, token, operation, false).await?;
                server.grant(&body, user)
            }
            None => self.grant(token, request).await,
        }
    }

    /// `POST /grants`.
    pub async fn grant(&self, token: &Secret, request: &GrantRequest) -> Result<Grant> {
        self.send(
            "getting storage credentials",
            self.http
                .current()
                .post(self.url("/grants"))
                .bearer_auth(token.expose())
                .json(request),
        )
        .await
    }

    /// `POST /uploads`.
    pub async fn confirm(
        &self,
        token: &Secret,
        confirmation: &Confirmation,
    ) -> Result<UploadRecord> {
        self.ferry_api()?;
        self.send(
            "confirming the upload",
            self.http
                .current()
                .post(self.url("/uploads"))
                .bearer_auth(token.expose())
                .json(confirmation),
        )
        .await
    }

    /// `POST /uploads/batch`: several confirmations in one request.
    pub async fn confirm_batch(
        &self,
        token: &Secret,
        batch: &ferry_protocol::ConfirmationBatch,
    ) -> Result<ferry_protocol::BatchOutcome> {
        self.ferry_api()?;
        self.send(
            "confirming uploads",
            self.http
                .current()
                .post(self.url("/uploads/batch"))
                .bearer_auth(token.expose())
                .json(batch),
        )
        .await
    }

    /// `GET /uploads.csv` (admins).
    pub async fn history_csv(&self, token: &Secret, query: &str) -> Result<String> {
        self.ferry_api()?;
        let operation = "exporting history";
        let url = format!("{}?{query}", self.url("/uploads.csv"));
        let network = |source| Error::unreached(operation, &self.base, source);
        let response = self
            .reach(self.http.current().get(url).bearer_auth(token.expose()))
            .await
            .map_err(network)?;
        self.through_proxy(&response)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(network)?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let (code, message) = match serde_json::from_str::<ErrorBody>(&body) {
            Ok(err) => (err.code, err.message),
            Err(_) => (ErrorCode::Unknown, body.chars().take(200).collect()),
        };
        Err(Error::Server {
            operation,
            code,
            message,
            status,
        })
    }

    /// `GET /uploads/stats?by=day` (admins).
    pub async fn stats(&self, token: &Secret, query: &str) -> Result<ferry_protocol::Stats> {
        self.ferry_api()?;
        let url = format!("{}?by=day&{query}", self.url("/uploads/stats"));
        self.send(
            "reading statistics",
            self.http.current().get(url).bearer_auth(token.expose()),
        )
        .await
    }

    /// `GET /uploads` with a raw query string (`user=…&limit=…`).
    pub async fn history(&self, token: &Secret, query: &str) -> Result<UploadPage> {
        self.ferry_api()?;
        let url = if query.is_empty() {
            self.url("/uploads")
        } else {
            format!("{}?{query}", self.url("/uploads"))
        };
        self.send(
            "reading history",
            self.http.current().get(url).bearer_auth(token.expose()),
        )
        .await
    }
}

/// The most a token server's answer may be (a credential answer is a few KiB).
const TOKEN_ANSWER_LIMIT: usize = 1 << 20;
/// The most an answer of Ferry's API may be (a page of history is well under this).
const API_ANSWER_LIMIT: usize = 16 << 20;

/// Why an answer could not be read.
enum BodyError {
    Network(reqwest::Error),
    TooLarge(&'static str, usize),
}

impl BodyError {
    fn into_error(self, network: impl FnOnce(reqwest::Error) -> Error) -> Error {
        match self {
            Self::Network(err) => network(err),
            Self::TooLarge(operation, limit) => Error::Protocol {
                operation,
                detail: format!("the answer is larger than {} KiB", limit / 1024),
            },
        }
    }
}

/// An answer's body, read up to `limit` bytes: a server cannot make the app hold more.
async fn read_body(
    operation: &'static str,
    mut response: reqwest::Response,
    limit: usize,
) -> std::result::Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Network)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(operation, limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

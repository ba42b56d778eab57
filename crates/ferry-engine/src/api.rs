//! The app server's JSON API as the engine calls it: one method per endpoint, errors mapped to
//! [`Error::Server`] with the server's stable code.

use std::time::Duration;

use ferry_protocol::{
    Confirmation, ErrorBody, ErrorCode, Grant, GrantRequest, Session as WireSession, SignIn,
    UploadPage, UploadRecord, User,
};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// A client of one app server.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
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
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|source| Error::Network {
                operation: "starting the HTTP client",
                target: base.to_owned(),
                source,
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
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
        let network = |source| Error::Network {
            operation,
            target: self.base.clone(),
            source,
        };
        let response = request.send().await.map_err(network)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(network)?;
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

    /// `POST /sessions`.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &Secret,
        device: &str,
    ) -> Result<WireSession> {
        let body = SignIn {
            username: username.into(),
            password: password.expose().into(),
            device: Some(device.into()),
        };
        self.send(
            "signing in",
            self.http.post(self.url("/sessions")).json(&body),
        )
        .await
    }

    /// `GET /sessions/current`.
    pub async fn whoami(&self, token: &Secret) -> Result<User> {
        self.send(
            "checking the session",
            self.http
                .get(self.url("/sessions/current"))
                .bearer_auth(token.expose()),
        )
        .await
    }

    /// `DELETE /sessions/current`.
    pub async fn sign_out(&self, token: &Secret) -> Result<()> {
        self.send::<()>(
            "signing out",
            self.http
                .delete(self.url("/sessions/current"))
                .bearer_auth(token.expose()),
        )
        .await
    }

    /// `POST /grants`.
    pub async fn grant(&self, token: &Secret, request: &GrantRequest) -> Result<Grant> {
        self.send(
            "getting storage credentials",
            self.http
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
        self.send(
            "confirming the upload",
            self.http
                .post(self.url("/uploads"))
                .bearer_auth(token.expose())
                .json(confirmation),
        )
        .await
    }

    /// `GET /uploads.csv` (admins).
    pub async fn history_csv(&self, token: &Secret, query: &str) -> Result<String> {
        let operation = "exporting history";
        let url = format!("{}?{query}", self.url("/uploads.csv"));
        let network = |source| Error::Network {
            operation,
            target: self.base.clone(),
            source,
        };
        let response = self
            .http
            .get(url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(network)?;
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
        let url = format!("{}?by=day&{query}", self.url("/uploads/stats"));
        self.send(
            "reading statistics",
            self.http.get(url).bearer_auth(token.expose()),
        )
        .await
    }

    /// `GET /uploads` with a raw query string (`user=…&limit=…`).
    pub async fn history(&self, token: &Secret, query: &str) -> Result<UploadPage> {
        let url = if query.is_empty() {
            self.url("/uploads")
        } else {
            format!("{}?{query}", self.url("/uploads"))
        };
        self.send(
            "reading history",
            self.http.get(url).bearer_auth(token.expose()),
        )
        .await
    }
}

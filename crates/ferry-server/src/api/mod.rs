//! The JSON API under `/api/v1`: each handler parses, calls one operation, and maps the error.

mod error;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use ferry_protocol::{
    BatchOutcome, ConfirmOutcome, Confirmation, ConfirmationBatch, ErrorCode, Grant, GrantRequest,
    Session, SignIn, Stats, UploadPage, UploadRecord, User,
};

use self::error::{ApiError, BadBody, BadQuery, error_response};
use crate::callbacks::{Arrived, Callbacks};
use crate::error::Error;
use crate::grants::{GrantAsk, Grants};
use crate::sessions::Sessions;
use crate::uploads::{HistoryQuery, Uploads};

/// Largest JSON body accepted.
const MAX_BODY: usize = 64 * 1024;
/// Largest batch of confirmations accepted (up to `MAX_BATCH` of them).
const MAX_BATCH_BODY: usize = 2 * 1024 * 1024;

/// What the handlers share.
pub(crate) struct AppState {
    pub(crate) sessions: Sessions,
    pub(crate) grants: Arc<Grants>,
    pub(crate) uploads: Uploads,
    pub(crate) callbacks: Callbacks,
}

type AppResult<T> = Result<T, ApiError>;
type Shared = State<Arc<AppState>>;

/// A JSON body whose rejection is `{code, message}`.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(BadBody))]
struct Body<T>(T);

/// A query string whose rejection is `{code, message}`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(BadQuery))]
struct Params<T>(T);

/// The bearer token of the request.
struct Bearer(String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match value.and_then(|v| v.strip_prefix("Bearer ")) {
            Some(token) if !token.trim().is_empty() => Ok(Self(token.trim().to_owned())),
            _ => Err(Error::Unauthenticated.into()),
        }
    }
}

/// The signed-in user of the request.
struct Caller(User);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Bearer(token) = Bearer::from_request_parts(parts, state).await?;
        Ok(Self(state.sessions.resolve(&token).await?))
    }
}

async fn sign_in(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(body): Body<SignIn>,
) -> AppResult<(StatusCode, Json<Session>)> {
    let session = state
        .sessions
        .sign_in(&body.username, &body.password, body.device, peer.ip())
        .await?;
    Ok((StatusCode::CREATED, Json(session)))
}

async fn current_session(Caller(user): Caller) -> Json<User> {
    Json(user)
}

async fn sign_out(State(state): Shared, Bearer(token): Bearer) -> AppResult<StatusCode> {
    state.sessions.sign_out(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn grant(
    State(state): Shared,
    Caller(user): Caller,
    Body(body): Body<GrantRequest>,
) -> AppResult<(StatusCode, Json<Grant>)> {
    let ask = GrantAsk {
        ttl: body.ttl_seconds.map(Duration::from_secs),
        provider: body.provider,
        signature_version: body.signature_version,
    };
    let mut grant = state.grants.mint(&user, ask).await?;
    grant.callback = state
        .callbacks
        .spec(grant.provider, user.id, grant.expires_at);
    Ok((StatusCode::CREATED, Json(grant)))
}

/// A callback request, raw: its signature covers the path, query and body as sent.
fn arrived(uri: &axum::http::Uri, headers: &axum::http::HeaderMap, body: bytes::Bytes) -> Arrived {
    Arrived {
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    }
}

async fn oss_callback(
    State(state): Shared,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> AppResult<Json<UploadRecord>> {
    let arrived = arrived(&uri, &headers, body);
    Ok(Json(
        state.callbacks.receive_oss(&state.uploads, arrived).await?,
    ))
}

async fn obs_callback(
    State(state): Shared,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> AppResult<Json<UploadRecord>> {
    let arrived = arrived(&uri, &headers, body);
    Ok(Json(
        state.callbacks.receive_obs(&state.uploads, arrived).await?,
    ))
}

async fn confirm(
    State(state): Shared,
    Caller(user): Caller,
    Body(body): Body<Confirmation>,
) -> AppResult<Json<UploadRecord>> {
    Ok(Json(state.uploads.confirm(&user, body).await?))
}

async fn confirm_batch(
    State(state): Shared,
    Caller(user): Caller,
    Body(body): Body<ConfirmationBatch>,
) -> AppResult<Json<BatchOutcome>> {
    let outcomes = state.uploads.confirm_batch(&user, body.uploads).await?;
    let results = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(row) => ConfirmOutcome::Recorded(Box::new(row)),
            Err(err) => ConfirmOutcome::Refused(error::error_body(&err)),
        })
        .collect();
    Ok(Json(BatchOutcome { results }))
}

async fn history(
    State(state): Shared,
    Caller(user): Caller,
    Params(query): Params<HistoryQuery>,
) -> AppResult<Json<UploadPage>> {
    Ok(Json(state.uploads.page(&user, &query).await?))
}

async fn history_csv(
    State(state): Shared,
    Caller(user): Caller,
    Params(query): Params<HistoryQuery>,
) -> AppResult<Response> {
    let csv = state.uploads.csv(&user, &query).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"ferry-uploads.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

async fn stats(
    State(state): Shared,
    Caller(user): Caller,
    Params(query): Params<HistoryQuery>,
) -> AppResult<Json<Stats>> {
    Ok(Json(state.uploads.stats(&user, &query).await?))
}

async fn not_found() -> Response {
    error_response(ErrorCode::NotFound, "no such endpoint".into())
}

async fn method_not_allowed() -> Response {
    let mut response = error_response(
        ErrorCode::NotFound,
        "this endpoint does not take that method".into(),
    );
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// The API router.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/sessions", post(sign_in))
        .route("/sessions/current", delete(sign_out).get(current_session))
        .route("/grants", post(grant))
        .route("/uploads", post(confirm).get(history))
        .route(
            "/uploads/batch",
            post(confirm_batch).layer(axum::extract::DefaultBodyLimit::max(MAX_BATCH_BODY)),
        )
        .route("/uploads.csv", get(history_csv))
        .route("/uploads/stats", get(stats))
        .route("/callbacks/oss", post(oss_callback))
        .route("/callbacks/obs", post(obs_callback));
    Router::new()
        .nest(ferry_protocol::API_PREFIX, api)
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(within_time))
        .with_state(state)
}

/// How long one API request may take, body included: the bodies are small, so a client still
/// sending one after this is holding a connection, not using it.
const REQUEST_TIME: Duration = Duration::from_secs(60);

/// Answers `408` to a request not done within [`REQUEST_TIME`].
async fn within_time(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIME, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = error_response(
                ErrorCode::InvalidRequest,
                "the request took too long to arrive".into(),
            );
            *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
            response
        }
    }
}

//! How errors leave the API: `{code, message}` with a status that fits the code. Internal errors
//! are logged in full and shown to the client only as what failed.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_protocol::{ErrorBody, ErrorCode};

use crate::error::Error;

/// An [`Error`] on its way to the client.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

fn status(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A response with an error body.
pub(crate) fn error_response(code: ErrorCode, message: String) -> Response {
    (status(code), axum::Json(ErrorBody { code, message })).into_response()
}

/// What the client is told of `err`: an internal error only as what failed (in full in the
/// log).
pub(crate) fn error_body(err: &Error) -> ErrorBody {
    let code = err.code();
    if let Error::Broker(err) = err {
        tracing::warn!(error = %err, "no grant from the broker");
    }
    let message = if code == ErrorCode::Internal {
        tracing::error!(error = %err, "request failed");
        "the server failed to handle this request; its log has the details".to_owned()
    } else {
        err.to_string()
    };
    ErrorBody { code, message }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ErrorBody { code, message } = error_body(&self.0);
        let mut response = error_response(code, message);
        if let Error::RateLimited { retry_after_secs } = self.0 {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// A rejected JSON body: too large, not JSON, wrong or unknown fields.
pub(crate) struct BadBody(pub(crate) JsonRejection);

impl From<JsonRejection> for BadBody {
    fn from(rejection: JsonRejection) -> Self {
        Self(rejection)
    }
}

impl IntoResponse for BadBody {
    fn into_response(self) -> Response {
        if self.0.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return error_response(
                ErrorCode::PayloadTooLarge,
                "the request body is too large".into(),
            );
        }
        error_response(ErrorCode::InvalidRequest, self.0.body_text())
    }
}

/// A rejected query string.
pub(crate) struct BadQuery(pub(crate) QueryRejection);

impl From<QueryRejection> for BadQuery {
    fn from(rejection: QueryRejection) -> Self {
        Self(rejection)
    }
}

impl IntoResponse for BadQuery {
    fn into_response(self) -> Response {
        error_response(ErrorCode::InvalidRequest, self.0.body_text())
    }
}

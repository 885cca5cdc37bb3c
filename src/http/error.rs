//! JSON errors with stable machine codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::search::SearchError;

/// An error answer: HTTP status, a stable `code` for programs, and a
/// `message` for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, code, message: message.into() }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, code, message: message.into() }
    }

    /// A server-side failure: logged in full, reported to the client without detail.
    pub fn internal(err: &dyn std::error::Error) -> Self {
        tracing::error!(error = %err, "internal error");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error; see the server log".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<SearchError> for ApiError {
    fn from(err: SearchError) -> Self {
        match err {
            SearchError::EmptyQuery => ApiError::bad_request("empty_query", "parameter `q` is empty"),
            SearchError::QueryTooLong(_) => ApiError::bad_request("query_too_long", err.to_string()),
            SearchError::BadLimit => ApiError::bad_request("invalid_limit", err.to_string()),
            SearchError::Index(ref inner) => ApiError::internal(inner),
        }
    }
}

/// Answer for paths that match no route.
pub async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

/// Answer for a known route called with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this route does not take that method".into(),
    }
}

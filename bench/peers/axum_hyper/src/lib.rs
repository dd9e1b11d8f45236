//! The one Router both binaries serve.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// `GET /hello`: `Hello, world!\n` as `text/plain`.
async fn hello() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain")], "Hello, world!\n")
}

/// The benchmark's router.
pub fn router() -> Router {
    Router::new().route("/hello", get(hello))
}

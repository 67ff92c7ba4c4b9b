//! A bare axum server answering every `GET` with the bytes of a file: the baseline the
//! registry's resolve endpoint is compared with in `benches/load/http.sh`.
//!
//! `bare-axum ADDR FILE`

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: bare-axum ADDR FILE");
        std::process::exit(2);
    };
    let body = bytes::Bytes::from(std::fs::read(file)?);
    let app = Router::new().fallback(get(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], body).into_response() }
    }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

//! `axum_hyper HOST:PORT`: the router on hyper, the usual way
//! (`axum::serve` on a tokio `TcpListener`, default multi-thread runtime).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).ok_or("usage: axum_hyper HOST:PORT")?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("axum_hyper: HTTP on http://{addr}/hello");
    axum::serve(listener, axum_hyper::router()).await?;
    Ok(())
}

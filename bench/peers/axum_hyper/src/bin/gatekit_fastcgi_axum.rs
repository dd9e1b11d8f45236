//! `gatekit_fastcgi_axum ADDR` (HOST:PORT or unix:PATH): the same router as
//! FastCGI, through gatekit-tower on gatekit's FastCGI server (default config).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).ok_or("usage: gatekit_fastcgi_axum ADDR")?;
    eprintln!("gatekit_fastcgi_axum: FastCGI on {addr}");
    gatekit_fastcgi::make_server(&addr, gatekit_tower::app(axum_hyper::router()))?.serve_forever()?;
    Ok(())
}

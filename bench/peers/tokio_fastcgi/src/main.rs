//! `tokio_fastcgi_hello ADDR`: "Hello, world!" with the `tokio-fastcgi` crate, as its example
//! does it (a task per connection, default multi-thread runtime). ADDR is `HOST:PORT` or
//! `unix:PATH` (made mode 0666).

use std::os::unix::fs::PermissionsExt;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_fastcgi::{RequestResult, Requests};

const REPLY: &[u8] = b"Content-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, world!\n";

/// Serves the requests of one connection until the web server closes it.
async fn connection<R, W>(rd: R, wr: W)
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut requests = Requests::new(rd, wr, 10, 10);
    while let Ok(Some(request)) = requests.next().await {
        let done = request
            .process(|request| async move {
                match request.get_stdout().write(REPLY).await {
                    Ok(_) => RequestResult::Complete(0),
                    Err(_) => RequestResult::Overloaded,
                }
            })
            .await;
        if done.is_err() {
            break;
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .ok_or("usage: tokio_fastcgi_hello HOST:PORT|unix:PATH")?;
    eprintln!("tokio_fastcgi_hello: FastCGI on {addr}");
    if let Some(path) = addr.strip_prefix("unix:") {
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let (rd, wr) = stream.into_split();
                connection(rd, wr).await;
            });
        }
    } else {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let (rd, wr) = stream.into_split();
                connection(rd, wr).await;
            });
        }
    }
}

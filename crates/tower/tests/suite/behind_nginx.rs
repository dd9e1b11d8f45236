//! The router behind real nginx: `fastcgi_pass` and `scgi_pass` (with
//! response buffering off, so server-sent events stream).

use gatekit_testkit::WebServer;

use crate::common::{self, check_common, check_sse};

fn check(ws: &WebServer, name: &str) {
    let ctx = |what: &str| format!("{name}: {what}; error log:\n{}", ws.error_log());
    check_common(&|p| ws.url(p), &ctx);
    check_sse(&ws.url("/sse"), &ctx);
    let r = gatekit_testkit::curl(&["--data", "name=nginx"], &ws.url("/form"));
    assert_eq!(r.text(), "Hello, nginx!\n", "{}", ctx("form"));
}

#[test]
fn nginx_fastcgi_pass() {
    let backend = common::fastcgi();
    let Some(ws) = WebServer::nginx(|p| {
        format!(
            "server {{\n  listen 127.0.0.1:{};\n  location / {{\n    \
             include /etc/nginx/fastcgi_params;\n    fastcgi_pass {};\n    \
             fastcgi_buffering off;\n  }}\n}}\n",
            p.port, backend.addr
        )
    }) else {
        return;
    };
    check(&ws, "nginx fastcgi_pass");
}

#[test]
fn nginx_scgi_pass() {
    let backend = common::scgi();
    let Some(ws) = WebServer::nginx(|p| {
        format!(
            "server {{\n  listen 127.0.0.1:{};\n  location / {{\n    \
             include /etc/nginx/scgi_params;\n    scgi_pass {};\n    \
             scgi_buffering off;\n  }}\n}}\n",
            p.port, backend.addr
        )
    }) else {
        return;
    };
    check(&ws, "nginx scgi_pass");
}

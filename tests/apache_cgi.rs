//! Real Apache httpd serving the built binary from a ScriptAlias cgi-bin,
//! under mod_cgi (prefork) and mod_cgid (event: the script's stdin is a
//! socket). The configuration is the one docs/deploy-apache-cgi.md shows.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::util::{
    curl, free_port, gatekit_bin, pattern, public_tempdir, require, set_mode, stop, wait_for_port,
};

const MODULES: &str = "/usr/lib/apache2/modules";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CgiModule {
    Cgi,
    Cgid,
}

struct Apache {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Apache {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

impl Apache {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }
}

fn config(dir: &Path, port: u16, module: CgiModule) -> String {
    let d = dir.display();
    let (mpm, cgi) = match module {
        CgiModule::Cgi => ("mpm_prefork", "LoadModule cgi_module {M}/mod_cgi.so\n"),
        CgiModule::Cgid => (
            "mpm_event",
            "LoadModule cgid_module {M}/mod_cgid.so\nScriptSock \"{D}/logs/cgid.sock\"\n",
        ),
    };
    let cgi = cgi.replace("{M}", MODULES).replace("{D}", &d.to_string());
    format!(
        r#"ServerRoot "{d}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{d}/logs/httpd.pid"
ErrorLog "{d}/logs/error.log"
LogLevel info
DefaultRuntimeDir "{d}/logs"
LoadModule {mpm}_module {MODULES}/mod_{mpm}.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule alias_module {MODULES}/mod_alias.so
{cgi}# Apache started as root runs CGI programs as this user.
User www-data
Group www-data
DocumentRoot "{d}/htdocs"
ScriptAlias /cgi-bin/ "{d}/cgi-bin/"
<Directory "{d}/cgi-bin">
    Require all granted
</Directory>
"#
    )
}

fn start(module: CgiModule) -> Option<Apache> {
    let apache = require(&["/usr/sbin/apache2", "/usr/sbin/httpd"])?;
    let dir = public_tempdir();
    for sub in ["cgi-bin", "htdocs", "logs"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        set_mode(&dir.path().join(sub), 0o755);
    }
    let bin = dir.path().join("cgi-bin/demo.cgi");
    std::fs::copy(gatekit_bin(), &bin).unwrap();
    set_mode(&bin, 0o755);
    std::fs::copy(gatekit_bin(), dir.path().join("cgi-bin/nph-demo.cgi")).unwrap();
    set_mode(&dir.path().join("cgi-bin/nph-demo.cgi"), 0o755);
    // The wrapper style: a script that runs gatekit with arguments.
    let echo = dir.path().join("cgi-bin/echo.cgi");
    std::fs::write(
        &echo,
        "#!/bin/sh\nexec \"$(dirname \"$0\")/demo.cgi\" serve --cgi echo\n",
    )
    .unwrap();
    set_mode(&echo, 0o755);
    let port = free_port();
    let conf = dir.path().join("httpd.conf");
    std::fs::write(&conf, config(dir.path(), port, module)).unwrap();
    // Its own process group: prefork Apache signals its whole group on shutdown.
    let mut child = Command::new(apache)
        .process_group(0)
        .arg("-f")
        .arg(&conf)
        .arg("-DFOREGROUND")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, &dir.path().join("logs/error.log"));
    Some(Apache { child, port, dir })
}

fn check_all(module: CgiModule) {
    let Some(apache) = start(module) else { return };
    let base = format!("http://127.0.0.1:{}/cgi-bin", apache.port);
    let ctx = |what: &str| format!("{module:?}: {what}; error log:\n{}", apache.error_log());

    // GET with a path and a query string.
    let r = curl(&[], &format!("{base}/demo.cgi/some/path?x=1&y=%41"));
    assert_eq!(r.status, 200, "{}", ctx("GET"));
    let body = r.text();
    assert!(body.starts_with("Hello world!\n"), "{}", ctx(&body));
    for line in [
        "GATEWAY_INTERFACE = 'CGI/1.1'",
        "PATH_INFO = '/some/path'",
        "QUERY_STRING = 'x=1&y=%41'",
        "SCRIPT_NAME = '/cgi-bin/demo.cgi'",
        "REQUEST_METHOD = 'GET'",
        "wsgi.run_once = True",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{}",
            ctx(&format!("{line} missing in\n{body}"))
        );
    }
    assert_eq!(
        r.header("Content-Type").as_deref(),
        Some("text/plain; charset=utf-8")
    );

    // %FF in the path reaches the app as the byte 0xFF.
    let r = curl(&[], &format!("{base}/demo.cgi/caf%FF"));
    assert_eq!(r.status, 200, "{}", ctx("%FF"));
    assert!(
        r.text().contains("PATH_INFO = '/caf\\xff'\n"),
        "{}",
        ctx(&r.text())
    );

    // A request header with a non-ASCII byte passes through byte-exact.
    let r = curl(&["-H", "X-Test: caf\u{e9}"], &format!("{base}/demo.cgi"));
    assert_eq!(r.status, 200, "{}", ctx("non-ASCII header"));
    assert!(
        r.text().contains("HTTP_X_TEST = 'caf\\xc3\\xa9'\n"),
        "{}",
        ctx(&r.text())
    );

    // A query with no '=' also arrives as arguments; still the demo app.
    let r = curl(&[], &format!("{base}/demo.cgi?hello+world"));
    assert_eq!(r.status, 200, "{}", ctx("isindex"));
    assert!(r.text().contains("QUERY_STRING = 'hello+world'\n"));

    // POST 5 MB through the echo wrapper: the same bytes come back.
    let data = pattern(5 * 1024 * 1024);
    let file = apache.dir.path().join("upload.bin");
    std::fs::write(&file, &data).unwrap();
    let r = curl(
        &[
            "--data-binary",
            &format!("@{}", file.display()),
            "-H",
            "Content-Type: application/octet-stream",
        ],
        &format!("{base}/echo.cgi"),
    );
    assert_eq!(r.status, 200, "{}", ctx("POST 5 MB"));
    assert_eq!(r.body.len(), data.len(), "{}", ctx("POST length"));
    assert!(r.body == data, "{}", ctx("POST body differs"));

    // NPH: the script's whole HTTP response goes to the client as it is.
    let r = curl(&[], &format!("{base}/nph-demo.cgi"));
    assert_eq!(r.status, 200, "{}", ctx("NPH"));
    assert!(r.text().starts_with("Hello world!\n"), "{}", ctx(&r.text()));

    // Nothing went wrong on the server side.
    let log = apache.error_log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        !log.contains("End of script output before headers"),
        "{log}"
    );
}

#[test]
fn apache_mod_cgi() {
    check_all(CgiModule::Cgi);
}

#[test]
fn apache_mod_cgid() {
    check_all(CgiModule::Cgid);
}

//! Client ID Metadata Documents served over real https for the tests: a test
//! CA and a `localhost` / 127.0.0.1 certificate made with the openssl CLI, and
//! `cimd_server.py` serving the documents (on 127.0.0.1, a free port).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// The CA file, and the server certificate and key it signed.
pub struct TestCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn create(dir: &Path) -> Self {
        let run = |args: &[&str]| {
            let status = Command::new("openssl").args(args).current_dir(dir).stderr(Stdio::null()).status();
            assert!(status.is_ok_and(|s| s.success()), "openssl {args:?} failed (is the openssl CLI installed?)");
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=cognigate test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat());
        run(&[&["req"][..], &ec, &["-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost"]].concat());
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ]);
        Self { ca: dir.join("ca.pem"), cert: dir.join("leaf.pem"), key: dir.join("leaf.key") }
    }
}

/// The document server, killed on drop. `base` is `https://localhost:PORT`.
pub struct DocumentServer {
    child: Child,
    pub base: String,
    hits: PathBuf,
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DocumentServer {
    /// Serves `docs` (path → `{status, headers, body}`; `{base}` in a body or
    /// header becomes the server's origin).
    pub fn start(dir: &Path, ca: &TestCa, docs: &Value) -> Self {
        std::fs::write(dir.join("docs.json"), docs.to_string()).unwrap();
        let script = super::peers::repo_root().join("tests/support/cimd_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--cert")
            .arg(&ca.cert)
            .arg("--key")
            .arg(&ca.key)
            .arg("--docs")
            .arg(dir.join("docs.json"))
            .arg("--hits")
            .arg(dir.join("hits.log"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the document server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected: {line}")).to_owned();
        Self { child, base: format!("https://localhost:{port}"), hits: dir.join("hits.log") }
    }

    /// How many requests reached `path` so far.
    pub fn hits(&self, path: &str) -> usize {
        std::fs::read_to_string(&self.hits).unwrap_or_default().lines().filter(|line| *line == path).count()
    }
}

/// A public client's metadata document at `{base}/{name}`.
pub fn document(name: &str, client_name: &str, redirect: &str) -> Value {
    json!({
        "client_id": format!("{{base}}/{name}"),
        "client_name": client_name,
        "redirect_uris": [redirect],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    })
}

/// `document` served as JSON, cacheable for five minutes.
pub fn served(document: &Value) -> Value {
    json!({"status": 200, "headers": {"Content-Type": "application/json", "Cache-Control": "max-age=300"}, "body": document.to_string()})
}

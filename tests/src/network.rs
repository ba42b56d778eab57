//! Networks between Ferry and its servers, on loopback: an HTTP proxy (CONNECT tunnels and
//! plain requests in absolute form, with an optional Basic password), a SOCKS5 proxy (with an
//! optional user name and password), and a TLS front whose certificate a private CA signed
//! (made with the `openssl` command, as a company's TLS inspection would be). Each proxy
//! records where it was asked to go.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest a client may take to send what a proxy needs before it relays.
const HANDSHAKE: Duration = Duration::from_secs(30);
/// Longest one relayed connection lives.
const RELAY: Duration = Duration::from_secs(600);
/// Largest request head the HTTP proxy reads.
const MAX_HEAD: usize = 64 * 1024;

/// Where a proxy was asked to go, in order (`CONNECT 127.0.0.1:…`, `PUT http://…`,
/// `SOCKS 127.0.0.1:…`).
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn push(&self, what: String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(what);
    }

    /// Everything so far.
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many went to `127.0.0.1:port`.
    pub fn to_port(&self, port: u16) -> usize {
        let needle = format!("127.0.0.1:{port}");
        self.all().iter().filter(|s| s.contains(&needle)).count()
    }
}

/// A user name and password a proxy asks for.
#[derive(Clone, Debug)]
pub struct Login {
    pub user: String,
    pub password: String,
}

/// A proxy on `127.0.0.1:0`, relaying until dropped.
pub struct LoopbackProxy {
    pub addr: SocketAddr,
    /// Where it relayed.
    pub seen: Seen,
    /// Clients turned away for a missing or wrong password.
    pub refused: Seen,
    /// The login it asks for now.
    login: Arc<Mutex<Option<Login>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LoopbackProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Http,
    Socks5,
}

impl LoopbackProxy {
    /// An HTTP proxy: `CONNECT` tunnels (https://) and absolute-form requests (http://, sent
    /// on with `Connection: close`); without `login`'s password it answers `407`.
    pub async fn http(login: Option<Login>) -> Self {
        Self::start(Kind::Http, login).await
    }

    /// A SOCKS5 proxy (CONNECT by IPv4 address or by name); with `login`, only its user name
    /// and password get through.
    pub async fn socks5(login: Option<Login>) -> Self {
        Self::start(Kind::Socks5, login).await
    }

    async fn start(kind: Kind, login: Option<Login>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("its address");
        let (seen, refused) = (Seen::default(), Seen::default());
        let (s, r) = (seen.clone(), refused.clone());
        let login = Arc::new(Mutex::new(login));
        let wanted = login.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let login = wanted.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let (s, r) = (s.clone(), r.clone());
                tokio::spawn(async move {
                    let relay = async {
                        match kind {
                            Kind::Http => http_client(client, &s, &r, login.as_ref()).await,
                            Kind::Socks5 => socks5_client(client, &s, &r, login.as_ref()).await,
                        }
                    };
                    let _ = tokio::time::timeout(RELAY, relay).await;
                });
            }
        });
        Self {
            addr,
            seen,
            refused,
            login,
            task,
        }
    }

    /// Asks for another login from the next connection on (a password changed by IT).
    pub fn set_login(&self, login: Option<Login>) {
        *self.login.lock().unwrap_or_else(|p| p.into_inner()) = login;
    }

    /// `http://127.0.0.1:port` (or `socks5://…` for a SOCKS5 proxy, as `scheme` says).
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }
}

/// Reads a request head (up to the blank line); the head and what came after it.
async fn read_head(client: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too long"));
        }
        let n = tokio::time::timeout(HANDSHAKE, client.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::other("the head never came"))??;
        if n == 0 {
            return Err(std::io::Error::other("closed before the head ended"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Relays both ways until either side closes.
async fn relay(
    mut a: impl AsyncRead + AsyncWrite + Unpin,
    mut b: impl AsyncRead + AsyncWrite + Unpin,
) {
    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
}

async fn http_client(
    mut client: TcpStream,
    seen: &Seen,
    refused: &Seen,
    login: Option<&Login>,
) -> std::io::Result<()> {
    let (head, rest) = read_head(&mut client).await?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if let Some(login) = login {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", login.user, login.password))
        );
        let given = headers.iter().find(|(n, _)| n == "proxy-authorization");
        if given.map(|(_, v)| v.as_str()) != Some(expected.as_str()) {
            refused.push(line.clone());
            client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"ferry-test\"\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await?;
            return Ok(());
        }
    }
    seen.push(line.clone());
    if method == "CONNECT" {
        let mut upstream = TcpStream::connect(target).await?;
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        upstream.write_all(&rest).await?;
        relay(client, upstream).await;
        return Ok(());
    }
    // Absolute form: `GET http://host:port/path HTTP/1.1`.
    let url = reqwest::Url::parse(target).map_err(std::io::Error::other)?;
    let host = format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(80)
    );
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut out = format!("{method} {path} {}\r\n", parts.next().unwrap_or("HTTP/1.1"));
    for (name, value) in &headers {
        if !matches!(
            name.as_str(),
            "proxy-authorization" | "proxy-connection" | "connection"
        ) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str("connection: close\r\n\r\n");
    let mut upstream = TcpStream::connect(&host).await?;
    upstream.write_all(out.as_bytes()).await?;
    upstream.write_all(&rest).await?;
    relay(client, upstream).await;
    Ok(())
}

async fn socks5_client(
    mut client: TcpStream,
    seen: &Seen,
    refused: &Seen,
    login: Option<&Login>,
) -> std::io::Result<()> {
    let mut greeting = [0u8; 2];
    read_exact(&mut client, &mut greeting).await?;
    if greeting[0] != 5 {
        return Err(std::io::Error::other("not SOCKS5"));
    }
    let mut methods = vec![0u8; greeting[1] as usize];
    read_exact(&mut client, &mut methods).await?;
    let wanted = if login.is_some() { 2 } else { 0 };
    if !methods.contains(&wanted) {
        refused.push("SOCKS no acceptable method".into());
        client.write_all(&[5, 0xff]).await?;
        return Ok(());
    }
    client.write_all(&[5, wanted]).await?;
    if let Some(login) = login {
        // RFC 1929: version 1, user, password.
        let mut head = [0u8; 2];
        read_exact(&mut client, &mut head).await?;
        let mut user = vec![0u8; head[1] as usize];
        read_exact(&mut client, &mut user).await?;
        let mut len = [0u8; 1];
        read_exact(&mut client, &mut len).await?;
        let mut password = vec![0u8; len[0] as usize];
        read_exact(&mut client, &mut password).await?;
        if user != login.user.as_bytes() || password != login.password.as_bytes() {
            refused.push("SOCKS wrong password".into());
            client.write_all(&[1, 1]).await?;
            return Ok(());
        }
        client.write_all(&[1, 0]).await?;
    }
    let mut request = [0u8; 4];
    read_exact(&mut client, &mut request).await?;
    if request[1] != 1 {
        client.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    }
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            read_exact(&mut client, &mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            read_exact(&mut client, &mut len).await?;
            let mut name = vec![0u8; len[0] as usize];
            read_exact(&mut client, &mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => {
            client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            return Ok(());
        }
    };
    let mut port = [0u8; 2];
    read_exact(&mut client, &mut port).await?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    seen.push(format!("SOCKS {target}"));
    let upstream = TcpStream::connect(&target).await?;
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    relay(client, upstream).await;
    Ok(())
}

async fn read_exact(client: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    tokio::time::timeout(HANDSHAKE, client.read_exact(buf))
        .await
        .map_err(|_| std::io::Error::other("the handshake never came"))??;
    Ok(())
}

/// A private CA and a certificate it signed for `127.0.0.1` and `localhost`, made by the
/// `openssl` command in `dir`: `(ca.pem, server.pem, server.key)`.
pub fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl must be installed (cargo xtask test does)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=Ferry Test Inspection CA",
    ];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&ca);
    let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    run(&csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write the extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// A TLS front on `127.0.0.1:0` with `cert`/`key`, relaying the decrypted bytes to an
/// upstream set later (a server whose own address is known only once it runs).
pub struct TlsFront {
    pub addr: SocketAddr,
    upstream: Arc<Mutex<Option<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsFront {
    pub async fn start(cert: &Path, key: &Path) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .expect("the certificate file")
            .collect::<Result<_, _>>()
            .expect("PEM certificates");
        let key = PrivateKeyDer::from_pem_file(key).expect("the key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("the certificate and its key");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("its address");
        let upstream: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let to = upstream.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, to) = (acceptor.clone(), to.clone());
                tokio::spawn(async move {
                    let Some(target) = *to.lock().unwrap_or_else(|p| p.into_inner()) else {
                        return;
                    };
                    let relayed = async {
                        let tls = acceptor.accept(client).await?;
                        let upstream = TcpStream::connect(target).await?;
                        relay(tls, upstream).await;
                        Ok::<_, std::io::Error>(())
                    };
                    let _ = tokio::time::timeout(RELAY, relayed).await;
                });
            }
        });
        Self {
            addr,
            upstream,
            task,
        }
    }

    /// Where the decrypted bytes go.
    pub fn set_upstream(&self, to: SocketAddr) {
        *self.upstream.lock().unwrap_or_else(|p| p.into_inner()) = Some(to);
    }

    /// `https://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

//! A blocking SMTP client on std sockets with rustls for STARTTLS: small, strict about
//! reply framing, and with a read timeout so no test can hang.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

pub struct Smtp {
    stream: Option<Stream>,
    buffer: Vec<u8>,
    pub greeting: String,
}

/// Trusts exactly the given certificate (the gateway's self-signed one).
pub fn client_config(cert_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots
            .add(cert.expect("valid PEM"))
            .expect("valid certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

impl Smtp {
    pub fn connect(addr: SocketAddr) -> Self {
        let mut smtp = Self::connect_silent(addr);
        smtp.greeting = smtp.read_reply();
        smtp
    }

    /// Connects to an implicit-TLS listener: the handshake first, then the greeting.
    pub fn connect_tls(addr: SocketAddr, cert_pem: &str) -> Self {
        let mut smtp = Self::connect_silent(addr);
        smtp.handshake(cert_pem).expect("TLS handshake");
        smtp.greeting = smtp.read_reply();
        smtp
    }

    /// Connects without reading the greeting.
    pub fn connect_silent(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).expect("connect to gateway");
        tcp.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        tcp.set_nodelay(true).expect("nodelay");
        Self {
            stream: Some(Stream::Plain(tcp)),
            buffer: Vec::new(),
            greeting: String::new(),
        }
    }

    /// This end's address (what a balancer's PROXY header must name).
    pub fn local_addr(&self) -> SocketAddr {
        match self.stream.as_ref().expect("connected") {
            Stream::Plain(tcp) => tcp.local_addr().expect("local address"),
            Stream::Tls(tls) => tls.sock.local_addr().expect("local address"),
        }
    }

    /// The certificate the server presented (DER), once in TLS.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        match self.stream.as_ref()? {
            Stream::Tls(tls) => tls.conn.peer_certificates()?.first().map(|c| c.to_vec()),
            Stream::Plain(_) => None,
        }
    }

    fn stream(&mut self) -> &mut Stream {
        self.stream.as_mut().expect("connected")
    }

    /// Ends TLS with a `close_notify` and then writes `cleartext` on the bare socket (a
    /// client, or an attacker, continuing in the clear).
    pub fn close_notify_then_cleartext(&mut self, cleartext: &[u8]) {
        let Some(Stream::Tls(tls)) = self.stream.as_mut() else {
            panic!("not in TLS");
        };
        tls.conn.send_close_notify();
        while tls.conn.wants_write() {
            if tls.conn.write_tls(&mut tls.sock).is_err() {
                return;
            }
        }
        let _ = tls.sock.write_all(cleartext);
    }

    /// Writes raw bytes beneath the TLS layer (not a TLS record unless they are one).
    pub fn write_beneath_tls(&mut self, bytes: &[u8]) {
        let Some(Stream::Tls(tls)) = self.stream.as_mut() else {
            panic!("not in TLS");
        };
        let _ = tls.sock.write_all(bytes);
    }

    /// Writes, reporting (rather than failing on) a connection the server closed.
    pub fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stream = self.stream();
        stream.write_all(bytes)?;
        stream.flush()
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        let stream = self.stream();
        stream.write_all(bytes).expect("write");
        stream.flush().expect("flush");
    }

    /// Sends a command line and reads its reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.write_raw(format!("{line}\r\n").as_bytes());
        self.read_reply()
    }

    /// Reads one whole reply (all lines of a multi-line one), CRLFs included.
    pub fn read_reply(&mut self) -> String {
        self.try_read_reply()
            .unwrap_or_else(|e| panic!("no reply: {e}"))
    }

    pub fn try_read_reply(&mut self) -> Result<String, String> {
        let mut reply = String::new();
        loop {
            let line = self.read_line()?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            reply.push_str(&line);
            if last {
                return Ok(reply);
            }
        }
    }

    fn read_line(&mut self) -> Result<String, String> {
        loop {
            if let Some(lf) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=lf).collect();
                let line = String::from_utf8(line).map_err(|e| e.to_string())?;
                if !line.ends_with("\r\n") {
                    return Err(format!("reply line without CRLF: {line:?}"));
                }
                return Ok(line);
            }
            let mut chunk = [0u8; 4096];
            match self.stream().read(&mut chunk) {
                Ok(0) => return Err("connection closed".into()),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Whether a reply (or the end) is waiting, without blocking for long.
    pub fn is_closed_or_replied(&mut self) -> bool {
        if !self.buffer.is_empty() {
            return true;
        }
        let Some(Stream::Plain(tcp)) = self.stream.as_ref() else {
            return false;
        };
        let _ = tcp.set_nonblocking(true);
        let mut byte = [0u8; 1];
        let seen = match std::io::Read::read(&mut &*tcp, &mut byte) {
            Ok(0) => true,
            Ok(_) => {
                self.buffer.push(byte[0]);
                true
            }
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        let _ = tcp.set_nonblocking(false);
        seen
    }

    /// True when the server closed the connection (EOF or reset) with nothing more sent.
    pub fn is_closed(&mut self) -> bool {
        if !self.buffer.is_empty() {
            return false;
        }
        let mut byte = [0u8; 1];
        match self.stream().read(&mut byte) {
            Ok(0) => true,
            Ok(_) => {
                self.buffer.push(byte[0]);
                false
            }
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }

    pub fn starttls(&mut self, cert_pem: &str) {
        let reply = self.cmd("STARTTLS");
        assert!(reply.starts_with("220 2.0.0"), "STARTTLS refused: {reply}");
        self.handshake(cert_pem).expect("TLS handshake");
    }

    /// Runs the client handshake on the current socket.
    pub fn handshake(&mut self, cert_pem: &str) -> Result<(), String> {
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            panic!("already TLS");
        };
        let name = ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(client_config(cert_pem), name)
            .map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| e.to_string())?;
        }
        self.stream = Some(Stream::Tls(Box::new(tls)));
        Ok(())
    }

    pub fn auth_plain(&mut self, user: &str, pass: &str) -> String {
        let response = STANDARD.encode(format!("\0{user}\0{pass}"));
        self.cmd(&format!("AUTH PLAIN {response}"))
    }

    pub fn auth_login(&mut self, user: &str, pass: &str) -> String {
        let reply = self.cmd("AUTH LOGIN");
        assert!(reply.starts_with("334 VXNlcm5hbWU6"), "{reply}");
        let reply = self.cmd(&STANDARD.encode(user));
        assert!(reply.starts_with("334 UGFzc3dvcmQ6"), "{reply}");
        self.cmd(&STANDARD.encode(pass))
    }

    /// Sends a message body (dot-stuffed here) and the terminator; returns the reply.
    pub fn data(&mut self, message: &str) -> String {
        let mut wire = String::with_capacity(message.len() + 8);
        for line in message.split_inclusive("\r\n") {
            if line.starts_with('.') {
                wire.push('.');
            }
            wire.push_str(line);
        }
        if !wire.ends_with("\r\n") {
            wire.push_str("\r\n");
        }
        wire.push_str(".\r\n");
        self.write_raw(wire.as_bytes());
        self.read_reply()
    }
}

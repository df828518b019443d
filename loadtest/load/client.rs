//! The load generator's SMTP client: EHLO, STARTTLS (rustls), AUTH PLAIN or LOGIN, then
//! transactions, pipelined when the server offers PIPELINING. Async on glommio.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::TlsConnector;
use glommio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use smtpgate::tls::Io;

use crate::message::Prepared;

type ClientIo = Io<futures_rustls::client::TlsStream<TcpStream>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

#[derive(Clone, Debug)]
pub struct Auth {
    pub user: String,
    pub token: String,
    pub mechanism: Mechanism,
}

/// How to reach the server.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    pub auth: Option<Auth>,
}

/// Why a connection failed (a reply code is not an error: it is recorded).
#[derive(Debug)]
pub enum ClientError {
    Io(std::io::Error),
    /// The server answered a setup step (greeting, EHLO, STARTTLS, AUTH) unexpectedly.
    Refused {
        step: &'static str,
        reply: String,
    },
    Tls(String),
    Malformed(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O: {e}"),
            Self::Refused { step, reply } => write!(f, "{step} refused: {}", reply.trim_end()),
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::Malformed(e) => write!(f, "malformed reply: {e}"),
        }
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

pub struct Connection {
    io: ClientIo,
    buf: Vec<u8>,
    /// Scratch for joining small writes.
    out: Vec<u8>,
    pipelining: bool,
}

/// Messages up to this size go out in one write (a TLS record holds 16 KiB).
const COALESCE_UP_TO: usize = 16 << 10;

impl Connection {
    /// Connects and goes through the greeting, EHLO, STARTTLS and AUTH as configured.
    pub async fn open(target: &Target) -> Result<Self, ClientError> {
        let glommio_io =
            |e: glommio::GlommioError<()>| ClientError::Io(std::io::Error::other(e.to_string()));
        let tcp = TcpStream::connect(target.addr).await.map_err(glommio_io)?;
        tcp.set_nodelay(true).map_err(glommio_io)?;
        let mut conn = Self {
            io: Io::Plain(tcp),
            buf: Vec::with_capacity(4096),
            out: Vec::new(),
            pipelining: false,
        };
        conn.expect("greeting", 220).await?;
        let mut ehlo = conn.command("EHLO", b"EHLO smtpgate-load\r\n", 250).await?;
        if let Some((config, name)) = &target.tls {
            conn.command("STARTTLS", b"STARTTLS\r\n", 220).await?;
            let Some(tcp) = conn.io.take_plain() else {
                return Err(ClientError::Tls("socket already upgraded".into()));
            };
            let tls = TlsConnector::from(Arc::clone(config))
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| ClientError::Tls(e.to_string()))?;
            conn.io = Io::Tls(Box::new(tls));
            ehlo = conn.command("EHLO", b"EHLO smtpgate-load\r\n", 250).await?;
        }
        conn.pipelining = ehlo.lines().any(|l| {
            l.get(4..)
                .is_some_and(|e| e.eq_ignore_ascii_case("PIPELINING"))
        });
        if let Some(auth) = &target.auth {
            conn.authenticate(auth).await?;
        }
        Ok(conn)
    }

    async fn authenticate(&mut self, auth: &Auth) -> Result<(), ClientError> {
        match auth.mechanism {
            Mechanism::Plain => {
                let response = STANDARD.encode(format!("\0{}\0{}", auth.user, auth.token));
                self.command("AUTH", format!("AUTH PLAIN {response}\r\n").as_bytes(), 235)
                    .await?;
            }
            Mechanism::Login => {
                self.command("AUTH", b"AUTH LOGIN\r\n", 334).await?;
                self.command(
                    "AUTH",
                    format!("{}\r\n", STANDARD.encode(&auth.user)).as_bytes(),
                    334,
                )
                .await?;
                self.command(
                    "AUTH",
                    format!("{}\r\n", STANDARD.encode(&auth.token)).as_bytes(),
                    235,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// One transaction; returns the code that decided the message's fate (MAIL's or
    /// DATA's refusal, or the reply to the end of data).
    pub async fn send(
        &mut self,
        message: &Prepared,
        message_id: &[u8],
    ) -> Result<u16, ClientError> {
        let replies_before_data = message.recipients.len() + 2;
        let mut codes = Vec::with_capacity(replies_before_data);
        if self.pipelining {
            self.write(&message.envelope).await?;
            for _ in 0..replies_before_data {
                codes.push(self.reply().await?.0);
            }
        } else {
            for line in message.envelope.split_inclusive(|&b| b == b'\n') {
                self.write(line).await?;
                codes.push(self.reply().await?.0);
            }
        }
        let (mail, data) = (codes[0], codes[replies_before_data - 1]);
        if mail != 250 {
            return Ok(mail);
        }
        if data != 354 {
            return Ok(data);
        }
        self.write_parts(message_id, &message.wire).await?;
        Ok(self.reply().await?.0)
    }

    pub async fn quit(mut self) {
        let _ = self.write(b"QUIT\r\n").await;
        let _ = self.reply().await;
        let _ = self.io.close().await;
    }

    async fn command(
        &mut self,
        step: &'static str,
        line: &[u8],
        expected: u16,
    ) -> Result<String, ClientError> {
        self.write(line).await?;
        self.expect(step, expected).await
    }

    async fn expect(&mut self, step: &'static str, expected: u16) -> Result<String, ClientError> {
        let (code, text) = self.reply().await?;
        if code == expected {
            Ok(text)
        } else {
            Err(ClientError::Refused { step, reply: text })
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        Ok(())
    }

    async fn write_parts(&mut self, first: &[u8], second: &[u8]) -> Result<(), ClientError> {
        if first.len() + second.len() <= COALESCE_UP_TO {
            // One write, so one TLS record and one segment: two would cost the server an
            // extra wakeup per message, which a real client does not make it pay.
            self.out.clear();
            self.out.extend_from_slice(first);
            self.out.extend_from_slice(second);
            self.io.write_all(&self.out).await?;
            self.io.flush().await?;
            return Ok(());
        }
        self.io.write_all(first).await?;
        self.io.write_all(second).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Reads one whole (possibly multi-line) reply: its code and text.
    async fn reply(&mut self) -> Result<(u16, String), ClientError> {
        let mut scanned = 0;
        loop {
            while let Some(lf) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let line_end = scanned + lf + 1;
                let line = &self.buf[scanned..line_end];
                if line.len() < 4 || !line[..3].iter().all(u8::is_ascii_digit) {
                    return Err(ClientError::Malformed(
                        String::from_utf8_lossy(line).into_owned(),
                    ));
                }
                scanned = line_end;
                if line[3] != b'-' {
                    let code = u16::from(line[0] - b'0') * 100
                        + u16::from(line[1] - b'0') * 10
                        + u16::from(line[2] - b'0');
                    let text = String::from_utf8_lossy(&self.buf[..scanned]).into_owned();
                    self.buf.drain(..scanned);
                    return Ok((code, text));
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).await?;
            if n == 0 {
                return Err(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `--insecure`: accept any certificate (a `--dev` gateway's self-signed one), while
/// still checking the handshake signatures.
#[derive(Debug)]
pub struct AcceptAnyCertificate(pub Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

//! Where the upstream is: `http://host:port` (h2c, prior knowledge) or
//! `https://host:port` (h2 over TLS, ALPN), parsed once from `--upstream`.

use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use rustls_pki_types::ServerName;

#[derive(Clone, Debug)]
pub struct Target {
    pub scheme: Scheme,
    pub authority: Authority,
    /// What to dial: host (brackets removed) and port.
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetError {
    Invalid(String),
    Scheme,
    MissingHost,
    HasPath,
    Method(String),
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "not a URL: {e}"),
            Self::Scheme => f.write_str("scheme must be http:// (h2c) or https:// (h2 over TLS)"),
            Self::MissingHost => f.write_str("URL has no host"),
            Self::HasPath => f.write_str("URL must not have a path (use --upstream-method)"),
            Self::Method(m) => write!(
                f,
                "method path {m:?} must look like /package.Service/Method"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

impl Target {
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| TargetError::Invalid(e.to_string()))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(TargetError::Scheme),
        };
        let authority = uri.authority().cloned().ok_or(TargetError::MissingHost)?;
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(TargetError::HasPath);
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(TargetError::MissingHost);
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self {
            scheme: if tls { Scheme::HTTPS } else { Scheme::HTTP },
            authority,
            host,
            port,
            tls,
        })
    }

    /// The name the upstream's certificate must carry.
    pub fn server_name(&self) -> Result<ServerName<'static>, TargetError> {
        ServerName::try_from(self.host.clone()).map_err(|e| TargetError::Invalid(e.to_string()))
    }

    /// The full request URI for a gRPC method path.
    pub fn uri(&self, method: &PathAndQuery) -> Uri {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(method.clone())
            .build()
            .unwrap_or_default()
    }
}

/// Validates `--upstream-method`.
pub fn parse_method(method: &str) -> Result<PathAndQuery, TargetError> {
    let well_formed = method.starts_with('/')
        && method.matches('/').count() == 2
        && !method.ends_with('/')
        && !method.contains(['?', '#', ' ']);
    if !well_formed {
        return Err(TargetError::Method(method.to_owned()));
    }
    method
        .parse()
        .map_err(|_| TargetError::Method(method.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_h2c_and_tls_targets() {
        let t = Target::parse("http://10.0.0.5:50051").expect("h2c");
        assert_eq!((t.host.as_str(), t.port, t.tls), ("10.0.0.5", 50051, false));
        let t = Target::parse("https://api.example.com").expect("tls");
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("api.example.com", 443, true)
        );
        let t = Target::parse("http://[::1]:9").expect("ipv6");
        assert_eq!(t.host, "::1");
        assert_eq!(
            t.uri(&parse_method("/a.B/C").expect("method")).to_string(),
            "http://[::1]:9/a.B/C"
        );
    }

    #[test]
    fn rejects_bad_targets() {
        assert_eq!(Target::parse("ftp://x").err(), Some(TargetError::Scheme));
        assert_eq!(Target::parse("x:1").err(), Some(TargetError::Scheme));
        assert_eq!(
            Target::parse("http://x/api").err(),
            Some(TargetError::HasPath)
        );
        assert!(parse_method("notify").is_err());
        assert!(parse_method("/notify.v2.MessagingService/Notify").is_ok());
    }
}

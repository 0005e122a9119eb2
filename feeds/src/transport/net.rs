//! A TCP connection, with or without TLS, as one stream type.

use super::{Endpoint, TlsSettings, TransportError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

/// A connected stream: plain TCP or TLS over TCP.
#[derive(Debug)]
pub enum NetStream {
    /// `ws://`, `http://`.
    Plain(TcpStream),
    /// `wss://`, `https://`: the client side of a connection we made, or the server side
    /// of one we accepted (the simulator).
    Tls(Box<TlsStream<TcpStream>>),
}

/// rustls client settings: webpki roots plus the extra CA file, if any.
///
/// # Errors
/// [`TransportError::Tls`] when the CA file cannot be read or holds no certificate.
pub fn client_config(tls: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &tls.extra_ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect())
            .map_err(|e| TransportError::Tls(format!("CA file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(TransportError::Tls(format!(
                "CA file {}: no certificate in it",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| TransportError::Tls(format!("CA file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Connects to `endpoint`, with TLS when its scheme asks for it. Nagle is off: frames are
/// small and latency matters more than packets.
///
/// # Errors
/// [`TransportError::Io`] or [`TransportError::Tls`].
pub async fn connect(endpoint: &Endpoint, tls: &TlsSettings) -> Result<NetStream, TransportError> {
    let tcp = TcpStream::connect(endpoint.authority()).await?;
    tcp.set_nodelay(true)?;
    if !endpoint.tls {
        return Ok(NetStream::Plain(tcp));
    }
    let config = client_config(tls)?;
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|e| TransportError::Tls(format!("server name {:?}: {e}", endpoint.host)))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    Ok(NetStream::Tls(Box::new(TlsStream::Client(stream))))
}

/// rustls server settings from a PEM certificate chain and a PEM private key.
///
/// # Errors
/// [`TransportError::Tls`] when a file cannot be read or the key does not fit.
pub fn server_config(
    cert_chain: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, TransportError> {
    let tls_err = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        TransportError::Tls(format!("{}: {e}", what.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_chain)
        .and_then(|it| it.collect())
        .map_err(|e| tls_err(cert_chain, &e))?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).map_err(|e| tls_err(key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_err(cert_chain, &e))?;
    Ok(Arc::new(config))
}

/// Accepts the server side of a connection, with TLS when `tls` is given.
///
/// # Errors
/// [`TransportError::Io`] when the TLS handshake fails.
pub async fn accept(
    tcp: TcpStream,
    tls: Option<&Arc<rustls::ServerConfig>>,
) -> Result<NetStream, TransportError> {
    tcp.set_nodelay(true)?;
    match tls {
        None => Ok(NetStream::Plain(tcp)),
        Some(config) => {
            let stream = tokio_rustls::TlsAcceptor::from(config.clone())
                .accept(tcp)
                .await?;
            Ok(NetStream::Tls(Box::new(TlsStream::Server(stream))))
        }
    }
}

impl AsyncRead for NetStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NetStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_flush(cx),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

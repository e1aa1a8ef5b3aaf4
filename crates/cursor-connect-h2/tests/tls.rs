//! TLS with ALPN h2 against an in-process rustls server with a test CA.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cursor_connect_h2::{CallOptions, CertificateDer, Channel, Endpoint, ErrorKind};
use http::HeaderMap;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use support::*;
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(10);

struct Pki {
    ca: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    key: Vec<u8>,
}

fn pki() -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    Pki {
        ca: ca.der().clone(),
        leaf: leaf.der().clone(),
        key: leaf_key.serialize_der(),
    }
}

/// Serves h2 over TLS; `alpn` is what the server offers.
async fn tls_server(p: &Pki, alpn: Vec<Vec<u8>>) -> std::net::SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![p.leaf.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.key.clone())),
        )
        .unwrap();
    cfg.alpn_protocols = alpn;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls, Opts::default(), echo(), Default::default()).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn bidi_over_tls_with_alpn_h2() {
    let p = pki();
    let addr = tls_server(&p, vec![b"h2".to_vec()]).await;
    let ep = Endpoint::tls(&format!("localhost:{}", addr.port()))
        .unwrap()
        .tls_root_certificates(vec![p.ca.clone()]);
    let ch = Channel::connect(ep).await.unwrap();
    let (mut tx, mut rx) = ch
        .bidi("/e.v1.E/B", HeaderMap::new(), CallOptions::default())
        .await
        .unwrap();
    tokio::time::timeout(T, async {
        tx.send(Bytes::from_static(b"secure")).await.unwrap();
        tx.close_send().await.unwrap();
        assert_eq!(rx.message().await.unwrap().unwrap(), "secure");
        assert_eq!(rx.message().await.unwrap(), None);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn server_without_h2_alpn_fails_clearly() {
    let p = pki();
    let addr = tls_server(&p, vec![b"http/1.1".to_vec()]).await;
    let ep = Endpoint::tls(&format!("localhost:{}", addr.port()))
        .unwrap()
        .tls_root_certificates(vec![p.ca.clone()]);
    let e = tokio::time::timeout(T, Channel::connect(ep))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(e.is_retry_safe());
}

#[tokio::test]
async fn untrusted_certificate_is_a_tls_error() {
    let p = pki();
    let addr = tls_server(&p, vec![b"h2".to_vec()]).await;
    let ep = Endpoint::tls(&format!("localhost:{}", addr.port())).unwrap();
    let e = tokio::time::timeout(T, Channel::connect(ep))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(std::error::Error::source(&e).is_some());
}

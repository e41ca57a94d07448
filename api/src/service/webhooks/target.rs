//! Where webhooks may go. A URL is `http(s)://host[:port]/path` without credentials; its
//! host must not be (or resolve to) a loopback, private, link-local, shared, multicast,
//! unspecified or cloud-metadata address, unless the host is listed in
//! `SYNCCHAT_WEBHOOK_ALLOWED_HOSTS`. Checked when an endpoint is saved and again, through the
//! HTTP client's resolver, at every connection, so a name that later resolves inward (DNS
//! rebinding) is refused too. Redirects are not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;

use crate::error::{AppError, AppResult};

/// Hosts exempt from the address check (tests use `127.0.0.1`).
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts(Arc<Vec<String>>);

impl AllowedHosts {
    pub fn new(hosts: &[String]) -> AllowedHosts {
        AllowedHosts(Arc::new(hosts.iter().map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect()))
    }

    fn allows(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        self.0.iter().any(|h| h.trim_start_matches('[').trim_end_matches(']') == host)
    }
}

/// Most characters of a webhook URL.
pub const MAX_URL: usize = 2048;

/// Checks `raw` as a webhook URL (syntax, and where its host points): `BAD_USER_INPUT`
/// saying why not.
pub async fn check(raw: &str, allowed: &AllowedHosts) -> AppResult<Url> {
    let bad = |why: String| AppError::bad_input("url", why);
    if raw.chars().count() > MAX_URL {
        return Err(bad(format!("url must be at most {MAX_URL} characters")));
    }
    let url = Url::parse(raw.trim()).map_err(|e| bad(format!("url is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("url must be http or https".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("url must not contain credentials".into()));
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("url has no host".into()))?;
    if allowed.allows(host) {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| bad(format!("url's host {host} does not resolve: {e}")))?
            .collect(),
    };
    if let Some(inward) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(bad(format!(
            "url's host {host} is a loopback, private, link-local or metadata address ({}); \
             list it in SYNCCHAT_WEBHOOK_ALLOWED_HOSTS to allow it",
            inward.ip()
        )));
    }
    Ok(url)
}

/// Whether a webhook may connect to `ip`.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, cloud metadata among them
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fd00:ec2::254 (metadata) among them
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)) // documentation
}

/// The HTTP client's resolver: resolves as usual and keeps only addresses a webhook may use
/// (all of them for an allowed host).
#[derive(Clone)]
pub struct Resolver {
    pub allowed: AllowedHosts,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let open = allowed.allows(&host);
            let usable: Vec<SocketAddr> = found.into_iter().filter(|a| open || is_public(a.ip())).collect();
            if usable.is_empty() {
                return Err(format!("{host} resolves only to addresses webhooks may not use").into());
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether a URL whose host is an IP literal (which bypasses the resolver) may be used now.
pub fn literal_allowed(url: &Url, allowed: &AllowedHosts) -> bool {
    let Some(host) = url.host_str() else { return false };
    match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => allowed.allows(host) || is_public(ip),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inward_addresses_are_refused_unless_allowed() {
        let none = AllowedHosts::default();
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.16.5.5/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://localhost:8080/",
        ] {
            let err = check(url, &none).await.expect_err(url);
            assert!(err.to_string().contains("SYNCCHAT_WEBHOOK_ALLOWED_HOSTS"), "{url}: {err}");
        }
        let tests = AllowedHosts::new(&["127.0.0.1".into()]);
        assert!(check("http://127.0.0.1:9000/hook", &tests).await.is_ok());
        assert!(check("https://93.184.215.14/hook", &none).await.is_ok());
    }

    #[tokio::test]
    async fn malformed_urls_say_why() {
        let none = AllowedHosts::default();
        for (url, why) in [
            ("ftp://example.com/", "http or https"),
            ("not a url", "not a valid URL"),
            ("https://user:pw@93.184.215.14/", "credentials"),
        ] {
            let err = check(url, &none).await.expect_err(url);
            assert!(err.to_string().contains(why), "{url}: {err}");
        }
    }
}

//! Which addresses webhooks may reach.
//!
//! By default an endpoint may reach global addresses and loopback (`127.0.0.0/8`, `::1`, for
//! local receivers and tests) — not private networks (`10/8`, `172.16/12`, `192.168/16`,
//! `fc00::/7`), link-local addresses (`169.254/16`, where clouds serve instance metadata and
//! credentials, `fe80::/10`), the unspecified address, shared (carrier-grade NAT), multicast,
//! broadcast, documentation, benchmarking or reserved ranges. `allow_private = true` on an
//! endpoint lifts this for that endpoint. IPv4 addresses inside IPv6 ones (`::ffff:a.b.c.d`,
//! NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged as the IPv4 address.
//!
//! The check is made twice: on a literal IP in the URL when the endpoint is configured
//! ([`crate::Endpoint::new`]), and on every address a host name resolves to, at connection time,
//! by the client's resolver ([`GuardedResolver`]): refused addresses are dropped, and a name
//! with nothing left fails the attempt with the reason. Resolving and connecting use the same
//! answer, so a name cannot be re-pointed in between.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

/// Why an address may not be reached without `allow_private`; `None` when it may (global
/// addresses and loopback).
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (127, _, _) => None,
        (0, _, _) => Some("unspecified (0.0.0.0/8)"),
        (10, _, _) | (192, 168, _) => Some("private"),
        (172, b, _) if (16..32).contains(&b) => Some("private"),
        (169, 254, _) => Some("link-local"),
        (100, b, _) if (64..128).contains(&b) => Some("shared address space (carrier-grade NAT)"),
        (192, 0, 0) => Some("reserved (IETF protocol assignments)"),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Some("documentation"),
        (198, 18 | 19, _) => Some("benchmarking"),
        (224..=239, _, _) => Some("multicast"),
        _ if ip.is_broadcast() => Some("broadcast"),
        (240..=255, _, _) => Some("reserved"),
        _ => None,
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip == Ipv6Addr::LOCALHOST {
        return None;
    }
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s[0] {
        // NAT64 (64:ff9b::/96) carries the IPv4 destination in its last 32 bits.
        0x0064 if s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] => refused_v4(embedded(s[6], s[7])),
        0x0064 if s[1] == 0xff9b && s[2] == 1 => Some("private (local-use NAT64)"),
        // 6to4 (2002::/16) carries it in bits 16–48.
        0x2002 => refused_v4(embedded(s[1], s[2])),
        0x2001 if s[1] == 0x0db8 => Some("documentation"),
        0x2001 if s[1] == 0 => Some("reserved (Teredo)"),
        0xfc00..=0xfdff => Some("private (unique local)"),
        0xfe80..=0xfebf => Some("link-local"),
        0xff00..=0xffff => Some("multicast"),
        // Global unicast is 2000::/3; everything else is reserved or special.
        0x2000..=0x3fff => None,
        _ => Some("reserved"),
    }
}

/// Why an endpoint may not reach `ip`, as a sentence naming it; `None` when it may.
pub fn check(ip: IpAddr, allow_private: bool) -> Option<String> {
    let why = refused(ip).filter(|_| !allow_private)?;
    Some(format!("{ip} is {why}; webhooks reach private and link-local addresses only with allow_private = true"))
}

/// The addresses of `host` an endpoint may reach, or why none are left.
pub fn filter_resolved(host: &str, addrs: Vec<IpAddr>, allow_private: bool) -> Result<Vec<IpAddr>, String> {
    if addrs.is_empty() {
        return Err(format!("`{host}` resolves to no address"));
    }
    let (allowed, refused): (Vec<IpAddr>, Vec<IpAddr>) =
        addrs.into_iter().partition(|ip| check(*ip, allow_private).is_none());
    if allowed.is_empty() {
        let list: Vec<String> =
            refused.iter().map(|ip| format!("{ip} ({})", self::refused(*ip).unwrap_or("refused"))).collect();
        return Err(format!(
            "refused to connect: `{host}` resolves only to addresses webhooks may not reach: {}; \
             set allow_private = true on this webhook to allow them",
            list.join(", ")
        ));
    }
    Ok(allowed)
}

/// A future of looked-up addresses.
pub type LookupFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// How host names become addresses: the system resolver, or a stand-in in tests.
pub trait Lookup: Send + Sync + 'static {
    /// Every address of `host`.
    fn lookup(&self, host: String) -> LookupFuture;
}

/// The system resolver (`getaddrinfo`, via tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.map(|a| a.ip()).collect()) })
    }
}

/// The HTTP client's resolver: looks names up and keeps only the addresses the endpoint may
/// reach ([`filter_resolved`]).
#[derive(Clone)]
pub struct GuardedResolver {
    lookup: Arc<dyn Lookup>,
    allow_private: bool,
}

impl GuardedResolver {
    /// A resolver over `lookup`, refusing private addresses unless `allow_private`.
    pub fn new(lookup: Arc<dyn Lookup>, allow_private: bool) -> GuardedResolver {
        GuardedResolver { lookup, allow_private }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let lookup = self.lookup.lookup(host.clone());
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = lookup.await?;
            let allowed = filter_resolved(&host, addrs, allow_private)?;
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn global_and_loopback_addresses_are_allowed_and_the_rest_refused() {
        for allowed in [
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "::ffff:127.0.0.1",
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.1.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(refused(ip(allowed)), None, "{allowed}");
        }
        let cases = [
            ("10.0.0.5", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified (0.0.0.0/8)"),
            ("0.1.2.3", "unspecified (0.0.0.0/8)"),
            ("100.64.0.1", "shared address space (carrier-grade NAT)"),
            ("192.0.0.170", "reserved (IETF protocol assignments)"),
            ("192.0.2.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("::", "unspecified (::)"),
            ("fc00::1", "private (unique local)"),
            ("fd12:3456::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:10.1.2.3", "private"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("64:ff9b:1::1", "private (local-use NAT64)"),
            ("2002:a9fe:a9fe::1", "link-local"),
            ("2001:db8::1", "documentation"),
            ("2001:0:4136:e378::1", "reserved (Teredo)"),
            ("::169.254.169.254", "reserved"),
            ("100::1", "reserved"),
        ];
        for (address, why) in cases {
            assert_eq!(refused(ip(address)), Some(why), "{address}");
        }
        assert_eq!(check(ip("10.0.0.5"), true), None, "allow_private lifts it");
        let why = check(ip("169.254.169.254"), false).expect("refused");
        assert!(why.starts_with("169.254.169.254 is link-local") && why.contains("allow_private = true"), "{why}");
    }

    #[test]
    fn resolved_addresses_are_filtered_and_a_name_with_none_left_is_refused() {
        let mixed = vec![ip("169.254.169.254"), ip("127.0.0.1"), ip("10.0.0.1")];
        assert_eq!(filter_resolved("crm.test", mixed.clone(), false), Ok(vec![ip("127.0.0.1")]));
        assert_eq!(filter_resolved("crm.test", mixed.clone(), true), Ok(mixed));
        let err = filter_resolved("metadata.test", vec![ip("169.254.169.254"), ip("fd00::1")], false)
            .expect_err("nothing left");
        assert_eq!(
            err,
            "refused to connect: `metadata.test` resolves only to addresses webhooks may not reach: \
             169.254.169.254 (link-local), fd00::1 (private (unique local)); set allow_private = true on this \
             webhook to allow them"
        );
        assert!(filter_resolved("nothing.test", vec![], true).is_err());
    }

    /// Fixed answers, no network.
    struct Fixed(Vec<IpAddr>);

    impl Lookup for Fixed {
        fn lookup(&self, _host: String) -> LookupFuture {
            let addrs = self.0.clone();
            Box::pin(async move { Ok(addrs) })
        }
    }

    #[tokio::test]
    async fn the_resolver_hands_the_client_only_allowed_addresses() {
        use reqwest::dns::Resolve as _;
        let lookup: Arc<dyn Lookup> = Arc::new(Fixed(vec![ip("169.254.169.254"), ip("::1")]));
        let name = |host: &str| host.parse::<reqwest::dns::Name>().expect("a name");
        let guarded = GuardedResolver::new(lookup.clone(), false);
        let addrs: Vec<SocketAddr> = guarded.resolve(name("crm.test")).await.expect("one left").collect();
        assert_eq!(addrs, [SocketAddr::new(ip("::1"), 0)]);
        let open = GuardedResolver::new(lookup, true);
        assert_eq!(open.resolve(name("crm.test")).await.expect("both").count(), 2);
        let metadata = GuardedResolver::new(Arc::new(Fixed(vec![ip("169.254.169.254")])), false);
        let err = metadata.resolve(name("metadata.test")).await.err().expect("refused");
        assert!(err.to_string().contains("169.254.169.254 (link-local)"), "{err}");
    }
}

//! Who is calling: the client address handed to components as `X-Forwarded-For`.
//!
//! Components rate-limit by client address, so the header they see must not be
//! something the client wrote. The gateway replaces it with one address: the socket
//! peer, or, when the peer is a front the deployer trusts (an nginx or load balancer
//! listed in `trusted_proxies`), the address that front appended last.

use std::net::IpAddr;

/// The client's address for a request from `peer` carrying `forwarded` (the incoming
/// `X-Forwarded-For`, if any).
pub fn client_address(peer: IpAddr, forwarded: Option<&str>, trusted_proxies: &[IpAddr]) -> IpAddr {
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    // A trusted front appends the address it saw; everything left of that is the
    // client's own say and cannot be believed.
    forwarded
        .and_then(|header| header.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let claimed = Some("1.2.3.4");
        assert_eq!(client_address(ip("10.0.0.7"), claimed, &[]), ip("10.0.0.7"));
        assert_eq!(client_address(ip("10.0.0.7"), claimed, &[ip("10.0.0.1")]), ip("10.0.0.7"));
    }

    #[test]
    fn a_trusted_front_passes_on_the_address_it_appended() {
        let front = ip("127.0.0.1");
        assert_eq!(client_address(front, Some("6.6.6.6, 203.0.113.9"), &[front]), ip("203.0.113.9"));
        assert_eq!(client_address(front, Some(" 2001:db8::1 "), &[front]), ip("2001:db8::1"));
    }

    #[test]
    fn a_trusted_front_without_a_usable_header_is_the_client() {
        let front = ip("127.0.0.1");
        assert_eq!(client_address(front, None, &[front]), front);
        assert_eq!(client_address(front, Some("not-an-address"), &[front]), front);
    }
}

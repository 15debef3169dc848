//! The names a server certificate answers to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rcgen::SanType;

use super::CertError;

/// Host names and IP addresses for a server certificate's Subject
/// Alternative Names. The first host name (or, without one, the first
/// address) also becomes the common name, for the humans reading it; TLS
/// clients match only the SANs (RFC 6125).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectNames {
    hostnames: Vec<String>,
    ips: Vec<IpAddr>,
}

impl SubjectNames {
    /// `localhost`, `127.0.0.1` and `::1`: what a broker on this machine is
    /// reached by.
    pub fn localhost() -> Self {
        Self {
            hostnames: vec!["localhost".to_owned()],
            ips: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
        }
    }

    /// The given names, in order. Each host name must be a valid DNS name
    /// (wildcards like `*.example.com` are allowed); at least one name or
    /// address is required. A "host name" that is an IPv4 or IPv6 address
    /// (`192.0.2.2`, `::1`) joins the addresses, after those given: TLS
    /// clients match an address only against IP SANs (RFC 6125 6.2.1), so a
    /// DNS SAN `192.0.2.2` would never match.
    pub fn new(hostnames: Vec<String>, mut ips: Vec<IpAddr>) -> Result<Self, CertError> {
        if hostnames.is_empty() && ips.is_empty() {
            return Err(CertError::NoNames);
        }
        let (addresses, hostnames): (Vec<_>, Vec<_>) = hostnames
            .into_iter()
            .partition(|name| name.parse::<IpAddr>().is_ok());
        for ip in addresses.iter().filter_map(|a| a.parse::<IpAddr>().ok()) {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        // rcgen accepts any IA5 string as a DNS name; a name a TLS client can
        // match also needs to be non-empty, without spaces, and made of labels.
        if let Some(name) = hostnames.iter().find(|n| !is_dns_name(n)) {
            return Err(CertError::InvalidHostname { name: name.clone() });
        }
        Ok(Self { hostnames, ips })
    }

    /// These names followed by `other`'s, leaving out repeats.
    pub fn merged_with(mut self, other: &SubjectNames) -> Self {
        for h in &other.hostnames {
            if !self.hostnames.iter().any(|x| x.eq_ignore_ascii_case(h)) {
                self.hostnames.push(h.clone());
            }
        }
        for ip in &other.ips {
            if !self.ips.contains(ip) {
                self.ips.push(*ip);
            }
        }
        self
    }

    /// The host names, in order.
    pub fn hostnames(&self) -> &[String] {
        &self.hostnames
    }

    /// The IP addresses, in order.
    pub fn ips(&self) -> &[IpAddr] {
        &self.ips
    }

    /// The common name: the first host name, else the first address.
    pub fn common_name(&self) -> String {
        match (self.hostnames.first(), self.ips.first()) {
            (Some(h), _) => h.clone(),
            (None, Some(ip)) => ip.to_string(),
            // `new` and `localhost` guarantee at least one name.
            (None, None) => String::new(),
        }
    }

    pub(super) fn sans(&self) -> Result<Vec<SanType>, CertError> {
        let mut sans = Vec::with_capacity(self.hostnames.len() + self.ips.len());
        for name in &self.hostnames {
            let dns = name
                .as_str()
                .try_into()
                .map_err(|_| CertError::InvalidHostname { name: name.clone() })?;
            sans.push(SanType::DnsName(dns));
        }
        sans.extend(self.ips.iter().map(|ip| SanType::IpAddress(*ip)));
        Ok(sans)
    }
}

/// Labels of letters, digits, `-` and `_`, separated by dots, the first label
/// possibly `*`; no empty labels; at most 253 characters.
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    name.split('.').enumerate().all(|(i, label)| {
        (i == 0 && label == "*")
            || (!label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_names_localhost_and_both_loopbacks() {
        let n = SubjectNames::localhost();
        assert_eq!(n.hostnames(), ["localhost"]);
        assert_eq!(n.ips().len(), 2);
        assert_eq!(n.common_name(), "localhost");
    }

    #[test]
    fn first_hostname_is_common_name_and_ip_only_uses_ip() {
        let n = SubjectNames::new(vec!["a.example".into(), "b.example".into()], vec![]).unwrap();
        assert_eq!(n.common_name(), "a.example");
        let n = SubjectNames::new(vec![], vec!["10.0.0.5".parse().unwrap()]).unwrap();
        assert_eq!(n.common_name(), "10.0.0.5");
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "has space", "a..b", "-lead.example", "ünï.example"] {
            let err = SubjectNames::new(vec![bad.into()], vec![]).unwrap_err();
            assert!(matches!(err, CertError::InvalidHostname { .. }), "{bad}");
        }
        assert!(matches!(
            SubjectNames::new(vec![], vec![]).unwrap_err(),
            CertError::NoNames
        ));
        assert!(SubjectNames::new(vec!["*.example.com".into()], vec![]).is_ok());
    }

    /// Issue 12: `toolkit certs --hostname 192.0.2.2` wrote a DNS SAN.
    #[test]
    fn addresses_given_as_hostnames_become_ip_addresses() {
        let n = SubjectNames::new(
            vec![
                "192.0.2.2".into(),
                "broker.example".into(),
                "2001:db8::1".into(),
            ],
            vec!["192.0.2.2".parse().unwrap()],
        )
        .unwrap();
        assert_eq!(n.hostnames(), ["broker.example"]);
        let ips: Vec<IpAddr> = vec!["192.0.2.2".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        assert_eq!(n.ips(), ips);
        assert!(matches!(
            n.sans().unwrap().as_slice(),
            [
                SanType::DnsName(_),
                SanType::IpAddress(_),
                SanType::IpAddress(_)
            ]
        ));
        let only_ip = SubjectNames::new(vec!["10.1.2.3".into()], vec![]).unwrap();
        assert!(only_ip.hostnames().is_empty());
        assert_eq!(only_ip.common_name(), "10.1.2.3");
    }

    #[test]
    fn merging_skips_repeats() {
        let n = SubjectNames::new(vec!["LOCALHOST".into(), "x.example".into()], vec![])
            .unwrap()
            .merged_with(&SubjectNames::localhost());
        assert_eq!(n.hostnames(), ["LOCALHOST", "x.example"]);
        assert_eq!(n.ips().len(), 2);
    }
}

//! The routing table: path prefix → target, longest prefix wins.

use std::collections::HashMap;

use ticketing_provider_support::LinkKey;

#[derive(Debug)]
pub struct RouteTable<T> {
    /// prefix → (the link that registered it, target)
    routes: HashMap<String, (LinkKey, T)>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self { routes: HashMap::new() }
    }
}

/// Normalises a configured prefix: leading slash, no trailing slash (except `/` itself).
pub fn normalise_prefix(prefix: &str) -> Option<String> {
    let trimmed = prefix.trim();
    if !trimmed.starts_with('/') {
        return None;
    }
    let without_trailing = trimmed.trim_end_matches('/');
    Some(if without_trailing.is_empty() { "/".to_string() } else { without_trailing.to_string() })
}

/// Does `prefix` cover `path` on a segment boundary? `/api/users` covers `/api/users`
/// and `/api/users/x`, not `/api/usersx`.
fn covers(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl<T: Clone> RouteTable<T> {
    /// Adds a route. A prefix can belong to one component only; a link re-registering
    /// replaces its previous prefix (a link update), and a new link of the same component
    /// takes the prefix over (a link renamed in a new manifest version: the old link is
    /// deleted after the new one exists, and must not take the route with it).
    pub fn insert(&mut self, prefix: &str, link: LinkKey, target: T) -> Result<(), String> {
        let prefix = normalise_prefix(prefix).ok_or_else(|| format!("path `{prefix}` must start with `/`"))?;
        if let Some((owner, _)) = self.routes.get(&prefix) {
            if owner.component != link.component {
                return Err(format!("path `{prefix}` is already routed to component `{}`", owner.component));
            }
        }
        self.remove_link(&link);
        self.routes.insert(prefix, (link, target));
        Ok(())
    }

    /// Removes whatever route the link registered.
    pub fn remove_link(&mut self, link: &LinkKey) {
        self.routes.retain(|_, (owner, _)| owner != link);
    }

    /// The target for a request path, by longest matching prefix.
    pub fn lookup(&self, path: &str) -> Option<T> {
        self.routes
            .iter()
            .filter(|(prefix, _)| covers(prefix, path))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, (_, target))| target.clone())
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.routes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_link_of_the_same_component_keeps_the_route() {
        let mut table = RouteTable::default();
        let old = LinkKey::new("auth", "default");
        let new = LinkKey::new("auth", "route-auth");
        table.insert("/api/users", old.clone(), 1).unwrap();
        table.insert("/api/users", new, 2).unwrap();
        table.remove_link(&old);
        assert_eq!(table.lookup("/api/users/signin"), Some(2));
        assert!(table.insert("/api/users", LinkKey::new("tickets", "x"), 3).is_err(), "another component cannot take it");
    }

    fn link(component: &str) -> LinkKey {
        LinkKey::new(component, "default")
    }

    fn table() -> RouteTable<&'static str> {
        let mut t = RouteTable::default();
        t.insert("/", link("web"), "web").unwrap();
        t.insert("/api/users", link("auth"), "auth").unwrap();
        t.insert("/api/tickets/", link("tickets"), "tickets").unwrap();
        t
    }

    #[test]
    fn longest_prefix_wins_on_segment_boundaries() {
        let t = table();
        assert_eq!(t.lookup("/api/users/currentuser"), Some("auth"));
        assert_eq!(t.lookup("/api/users"), Some("auth"));
        assert_eq!(t.lookup("/api/tickets/abc"), Some("tickets"));
        assert_eq!(t.lookup("/api/usersx"), Some("web"));
        assert_eq!(t.lookup("/"), Some("web"));
        assert_eq!(t.lookup("/orders/1"), Some("web"));
    }

    #[test]
    fn without_a_root_route_unknown_paths_miss() {
        let mut t = RouteTable::default();
        t.insert("/api/users", link("auth"), 1).unwrap();
        assert_eq!(t.lookup("/api/orders"), None);
        assert_eq!(t.lookup("/"), None);
    }

    #[test]
    fn a_prefix_belongs_to_one_link() {
        let mut t = table();
        assert!(t.insert("/api/users/", link("other"), "other").is_err());
        assert_eq!(t.lookup("/api/users/x"), Some("auth"));
    }

    #[test]
    fn relinking_moves_the_route_and_deleting_removes_it() {
        let mut t = table();
        t.insert("/api/accounts", link("auth"), "auth").unwrap();
        assert_eq!(t.lookup("/api/users/x"), Some("web"));
        assert_eq!(t.lookup("/api/accounts/x"), Some("auth"));
        t.remove_link(&link("auth"));
        assert_eq!(t.lookup("/api/accounts/x"), Some("web"));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn prefixes_must_be_absolute() {
        let mut t: RouteTable<u8> = RouteTable::default();
        assert!(t.insert("api", link("x"), 1).is_err());
        assert_eq!(normalise_prefix("///"), Some("/".to_string()));
    }
}

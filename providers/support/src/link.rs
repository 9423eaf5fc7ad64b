//! Which link something belongs to.

use std::fmt;

use wasmcloud_provider_sdk::{Context, LinkConfig, LinkDeleteInfo};

/// One link between a component and this provider: the component's id and the link's
/// name. The component alone is not enough: one component may link to a provider several
/// times under different names, and wadm renames a link by putting the new one before it
/// deletes the old, so deleting the old link must not take away what the new one set up.
///
/// The constructors are named after the [`Provider`](wasmcloud_provider_sdk::Provider)
/// methods they serve, so that the component is always taken from the right end of the
/// link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkKey {
    pub component: String,
    pub name: String,
}

impl LinkKey {
    pub fn new(component: impl Into<String>, name: impl Into<String>) -> Self {
        Self { component: component.into(), name: name.into() }
    }

    /// For `receive_link_config_as_source`: this provider calls the component, the link's target.
    pub fn as_source(link: &LinkConfig<'_>) -> Self {
        Self::new(link.target_id, link.link_name)
    }

    /// For `receive_link_config_as_target`: the component calls this provider; it is the link's source.
    pub fn as_target(link: &LinkConfig<'_>) -> Self {
        Self::new(link.source_id, link.link_name)
    }

    /// For `delete_link_as_source`.
    pub fn deleted_as_source(info: &impl LinkDeleteInfo) -> Self {
        Self::new(info.get_target_id(), info.get_link_name())
    }

    /// For `delete_link_as_target`.
    pub fn deleted_as_target(info: &impl LinkDeleteInfo) -> Self {
        Self::new(info.get_source_id(), info.get_link_name())
    }

    /// The link a call from a component came through (the caller's id, empty if the
    /// context lacks it, and the link name the host put in the context).
    pub fn of_call(cx: &Context) -> Self {
        Self::new(cx.component.clone().unwrap_or_default(), cx.link_name())
    }
}

/// `component `orders` (link `default`)`, for errors and logs.
impl fmt::Display for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "component `{}` (link `{}`)", self.component, self.name)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Deleted;

    impl LinkDeleteInfo for Deleted {
        fn get_source_id(&self) -> &str {
            "orders"
        }
        fn get_target_id(&self) -> &str {
            "keyvalue-mongo"
        }
        fn get_link_name(&self) -> &str {
            "default"
        }
    }

    #[test]
    fn the_component_comes_from_the_far_end_of_the_link() {
        assert_eq!(LinkKey::deleted_as_target(&Deleted), LinkKey::new("orders", "default"));
        assert_eq!(LinkKey::deleted_as_source(&Deleted), LinkKey::new("keyvalue-mongo", "default"));
    }

    #[test]
    fn a_call_names_its_link() {
        let cx = Context { component: Some("orders".into()), tracing: HashMap::from([("link-name".into(), "events".into())]) };
        assert_eq!(LinkKey::of_call(&cx), LinkKey::new("orders", "events"));
        assert_eq!(LinkKey::of_call(&Context::default()), LinkKey::new("", "default"));
        assert_eq!(LinkKey::new("orders", "events").to_string(), "component `orders` (link `events`)");
    }
}

//! The principal as JSON, written by hand: the body of `/api/me`.
//!
//! Why not `serde_json::to_writer(&principal)`: serde's derive hands every
//! field name and enum value to serde_json as a string, which escapes each
//! of their bytes one by one — about half of `/api/me`'s handler cost. The
//! fixed parts (field names, enum values, permission names) are written here
//! as pre-escaped literals; only the free strings (ids, names, workspace
//! ids, networks) go through JSON string escaping. Nothing is remembered
//! between calls. The output is byte for byte `serde_json::to_vec(&principal)`
//! (the tests below compare the two, over hostile strings too); `Serialize`
//! stays derived for the OpenAPI schema and every other use.

use std::io::Write;

use serde::Serialize;

use super::{Principal, PrincipalKind};
use crate::auth::scope::{Permission, Role, Scope};
use crate::core::words::{any_word, HIGHS, ONES};

impl Principal {
    /// Writes the principal's JSON to `out`, as `serde_json::to_writer` would.
    pub fn write_json<W: Write>(&self, out: &mut W) -> serde_json::Result<()> {
        put(out, b"{\"id\":\"")?;
        push_contents(out, &self.id)?;
        put(
            out,
            match self.kind {
                PrincipalKind::Session => b"\",\"kind\":\"session\",\"name\":\"",
                PrincipalKind::DashboardKey => b"\",\"kind\":\"dashboard-key\",\"name\":\"",
                PrincipalKind::AdminKey => b"\",\"kind\":\"admin-key\",\"name\":\"",
                PrincipalKind::ClientKey => b"\",\"kind\":\"client-key\",\"name\":\"",
            },
        )?;
        push_contents(out, &self.name)?;
        put(
            out,
            match self.role {
                Role::Admin => b"\",\"role\":\"admin\",\"scopes\":{\"permissions\":[",
                Role::Client => b"\",\"role\":\"client\",\"scopes\":{\"permissions\":[",
            },
        )?;
        write_scope(&self.scope, out)?;
        put(out, b"}}")
    }
}

#[inline]
fn put<W: Write>(out: &mut W, bytes: &[u8]) -> serde_json::Result<()> {
    out.write_all(bytes).map_err(serde_json::Error::io)
}

/// The client role's permissions, the most common list, in one literal.
const CLIENT_PERMISSIONS: [Permission; 3] = [
    Permission::Ask,
    Permission::JobsRead,
    Permission::WorkspacesRead,
];

/// The scope's fields after `{"permissions":[`, without its closing brace.
fn write_scope<W: Write>(scope: &Scope, out: &mut W) -> serde_json::Result<()> {
    if scope.permissions == CLIENT_PERMISSIONS {
        put(out, b"\"ask\",\"jobs:read\",\"workspaces:read\"")?;
    } else if let Some((first, rest)) = scope.permissions.split_first() {
        put(out, &quoted_permission(*first)[1..])?;
        for permission in rest {
            put(out, quoted_permission(*permission))?;
        }
    }
    match &scope.workspaces {
        None => put(out, b"],\"workspaces\":null")?,
        Some(ids) => {
            put(out, b"],\"workspaces\":[")?;
            for (i, id) in ids.iter().enumerate() {
                put(out, if i > 0 { b",\"" } else { b"\"" })?;
                push_contents(out, id)?;
                put(out, b"\"")?;
            }
            put(out, b"]")?;
        }
    }
    if !scope.allowed_ips.is_empty() {
        put(out, b",\"allowedIps\":")?;
        scope
            .allowed_ips
            .serialize(&mut serde_json::Serializer::new(&mut *out))?;
    }
    if let Some(limit) = scope.hourly_limit {
        put(out, b",\"hourlyLimit\":")?;
        limit.serialize(&mut serde_json::Serializer::new(&mut *out))?;
    }
    Ok(())
}

/// A permission's JSON string after a comma (the first one in a list is
/// written without it).
fn quoted_permission(permission: Permission) -> &'static [u8] {
    match permission {
        Permission::Ask => b",\"ask\"",
        Permission::JobsRead => b",\"jobs:read\"",
        Permission::WorkspacesRead => b",\"workspaces:read\"",
        Permission::WorkspacesWrite => b",\"workspaces:write\"",
        Permission::KeysManage => b",\"keys:manage\"",
    }
}

/// A JSON string's contents, between quotes the caller writes: copied when
/// no byte needs escaping, else escaped by serde_json (which escapes
/// exactly the control bytes, `"` and the backslash).
fn push_contents<W: Write>(out: &mut W, text: &str) -> serde_json::Result<()> {
    if needs_escape(text) {
        push_escaped(out, text)
    } else {
        put(out, text.as_bytes())
    }
}

#[inline(never)]
fn push_escaped<W: Write>(out: &mut W, text: &str) -> serde_json::Result<()> {
    let quoted = serde_json::to_vec(text)?;
    put(out, &quoted[1..quoted.len() - 1])
}

/// Whether a byte is below 0x20, `"` or a backslash, eight bytes at a
/// time (exact: the tests compare with the byte-by-byte rule).
#[inline]
fn needs_escape(text: &str) -> bool {
    any_word(text.as_bytes(), |word| {
        let control = word.wrapping_sub(ONES * 0x20);
        let quote = (word ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES);
        let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
        (control | quote | backslash) & !word & HIGHS != 0
    })
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::Arc;

    use ipnetwork::IpNetwork;
    use proptest::prelude::*;

    use super::*;

    fn hand_written(principal: &Principal) -> Vec<u8> {
        let mut out = Vec::new();
        principal.write_json(&mut out).unwrap();
        out
    }

    fn assert_same_as_serde(principal: &Principal) {
        let derived = serde_json::to_vec(principal).unwrap();
        assert_eq!(
            String::from_utf8(hand_written(principal)).unwrap(),
            String::from_utf8(derived).unwrap()
        );
    }

    const KINDS: [PrincipalKind; 4] = [
        PrincipalKind::Session,
        PrincipalKind::DashboardKey,
        PrincipalKind::AdminKey,
        PrincipalKind::ClientKey,
    ];

    #[test]
    fn every_kind_role_and_permission_is_written_as_serde_writes_it() {
        assert_same_as_serde(&Principal::admin_key());
        assert_same_as_serde(&Principal::client_key("0123456789ab"));
        for kind in KINDS {
            for role in [Role::Admin, Role::Client] {
                for permission in Permission::ALL {
                    assert_same_as_serde(&Principal {
                        id: "k".into(),
                        kind,
                        name: "n".into(),
                        role,
                        scope: Arc::new(Scope {
                            permissions: vec![permission],
                            workspaces: Some(Vec::new()),
                            allowed_ips: vec!["10.0.0.0/8".parse().unwrap()],
                            hourly_limit: NonZeroU32::new(u32::MAX),
                        }),
                    });
                }
            }
        }
    }

    #[test]
    fn quotes_backslashes_and_control_bytes_in_names_are_escaped_as_serde_does() {
        let mut principal = Principal::client_key("x");
        principal.name = "a \"quoted\" \\ name\n\t\u{1}\u{1f}\u{7f} é 🦀 </script>".into();
        principal.id = "\"".into();
        assert_same_as_serde(&principal);
    }

    fn permissions() -> impl Strategy<Value = Vec<Permission>> {
        proptest::sample::subsequence(Permission::ALL.to_vec(), 0..=Permission::ALL.len())
    }

    fn networks() -> impl Strategy<Value = Vec<IpNetwork>> {
        let v4 = (any::<[u8; 4]>(), 0u8..=32)
            .prop_map(|(ip, prefix)| IpNetwork::new(ip.into(), prefix).unwrap());
        let v6 = (any::<[u16; 8]>(), 0u8..=128)
            .prop_map(|(ip, prefix)| IpNetwork::new(ip.into(), prefix).unwrap());
        proptest::collection::vec(prop_oneof![v4, v6], 0..3)
    }

    fn scopes() -> impl Strategy<Value = Scope> {
        (
            permissions(),
            proptest::option::of(proptest::collection::vec(any::<String>(), 0..4)),
            networks(),
            proptest::option::of(1u32..).prop_map(|n| n.and_then(NonZeroU32::new)),
        )
            .prop_map(
                |(permissions, workspaces, allowed_ips, hourly_limit)| Scope {
                    permissions,
                    workspaces,
                    allowed_ips,
                    hourly_limit,
                },
            )
    }

    fn hostile_text() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "[\"\\\\\\x00-\\x1f\\x7f a-z/:<>é🦀]{0,40}"]
    }

    proptest! {
        #[test]
        fn a_string_needs_escaping_exactly_when_one_of_its_bytes_does(text in hostile_text()) {
            let bytewise = text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
            prop_assert_eq!(needs_escape(&text), bytewise);
        }

        #[test]
        fn the_hand_written_json_is_byte_for_byte_serde_json(
            id in hostile_text(),
            name in hostile_text(),
            kind in proptest::sample::select(KINDS.to_vec()),
            admin in any::<bool>(),
            scope in scopes(),
        ) {
            let principal = Principal {
                id: id.into(),
                kind,
                name: name.into(),
                role: if admin { Role::Admin } else { Role::Client },
                scope: Arc::new(scope),
            };
            prop_assert_eq!(hand_written(&principal), serde_json::to_vec(&principal).unwrap());
        }
    }
}

//! The `registry!` macro: a protocol registry (BGP's in `wire::iana`, DNS's
//! in `dns::iana`) written once as a table of `NAME = value => "Name"`, so
//! that a number and its name cannot drift apart.

/// A registry from one table of `NAME = value => "Name"`: a module with
/// `pub const NAME: T = value;` for each entry and `name(value)`, the
/// registry's name for a value. Items after a `;` go into the module too.
macro_rules! registry {
    ($(#[$doc:meta])* pub mod $module:ident: $ty:ty {
        $($konst:ident = $value:literal => $name:literal,)*
        $(; $($extra:item)*)?
    }) => {
        $(#[$doc])*
        pub mod $module {
            $(pub const $konst: $ty = $value;)*

            /// The registry's name of `v` (`None`: not one we know).
            pub fn name(v: $ty) -> Option<&'static str> {
                match v {
                    $($konst => Some($name),)*
                    _ => None,
                }
            }

            $($($extra)*)?
        }
    };
}

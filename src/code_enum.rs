//! The open code enums of the vendor modules (`quectel::error`, `simcom::error`).

/// Generates an open code enum (after smoltcp's `enum_with_unknown!`): one variant per
/// documented code, documented with its meaning, plus `Unknown(u16)`, with `KNOWN`,
/// `from_code`, `code`, `meaning`, `Display` and `core::error::Error`.
macro_rules! code_enum {
    (
        $(#[$attr:meta])*
        pub enum $name:ident {
            $(
                $(#[$vattr:meta])*
                $variant:ident = $code:literal => $meaning:literal,
            )+
        }
        unknown => $unknown:literal;
    ) => {
        $(#[$attr])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[non_exhaustive]
        pub enum $name {
            $(
                #[doc = concat!("`", stringify!($code), "`: ", $meaning, ".")]
                $(#[$vattr])*
                $variant,
            )+
            /// A code the table does not list. [`Self::from_code`] only produces it for such
            /// codes; `Unknown` holding a listed code compares unequal to that code's variant.
            Unknown(u16),
        }

        impl $name {
            /// Every documented code, in ascending order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The variant for `code`, or [`Self::Unknown`] if the table does not list it.
            pub const fn from_code(code: u16) -> Self {
                match code {
                    $($code => $name::$variant,)+
                    other => $name::Unknown(other),
                }
            }

            /// The numeric code, as the modem printed it.
            pub const fn code(self) -> u16 {
                match self {
                    $($name::$variant => $code,)+
                    $name::Unknown(code) => code,
                }
            }

            /// One line of plain English; never empty.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $($name::$variant => $meaning,)+
                    $name::Unknown(_) => $unknown,
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}: {}", self.code(), self.meaning())
            }
        }

        impl core::error::Error for $name {}

        impl From<u16> for $name {
            fn from(code: u16) -> Self {
                $name::from_code(code)
            }
        }
    };
}

pub(crate) use code_enum;
